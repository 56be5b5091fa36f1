"""Dataset preparation tools on small trees in the official source layouts."""
import os

import cv2
import numpy as np
from PIL import Image

from jseg.datasets import build_dataset
from jseg.datasets.classes import ISAID_PALETTE
from jseg.tools.convert_datasets import cityscapes, coco_stuff, isaid, voc_aug
from jseg.tools.convert_datasets.matlab import loadmat

LOAD = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")]


def test_cityscapes_label_ids_to_train_ids(tmp_path):
    root = str(tmp_path)
    d = f"{root}/gtFine/train/aachen"
    os.makedirs(d)
    ids = np.array([[7, 8, 26, 33, 0, 1, 9, 23]], np.uint8).repeat(4, 0)
    cv2.imwrite(f"{d}/aachen_000000_000019_gtFine_labelIds.png", ids)
    os.makedirs(f"{root}/leftImg8bit/train/aachen")
    cv2.imwrite(f"{root}/leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png", np.zeros((4, 8, 3), np.uint8))
    lines = []
    assert cityscapes.convert(root, out=lines.append) == 1 and "wrote 1" in lines[-1]
    train = cv2.imread(f"{d}/aachen_000000_000019_gtFine_labelTrainIds.png", cv2.IMREAD_UNCHANGED)
    assert train[0].tolist() == [0, 1, 13, 18, 255, 255, 255, 10]          # road, sidewalk, car, bicycle, sky
    assert open(f"{root}/train.txt").read().split() == ["aachen/aachen_000000_000019"]
    ds = build_dataset(dict(type="CityscapesDataset", data_root=root, img_dir="leftImg8bit/train",
                            ann_dir="gtFine/train", pipeline=LOAD))
    assert len(ds) == 1


def test_coco_stuff_182_to_171(tmp_path):
    root = str(tmp_path)
    os.makedirs(f"{root}/annotations/train2017")
    values = np.array([[0, 10, 11, 12, 26, 90, 91, 181, 255]], np.uint8)
    cv2.imwrite(f"{root}/annotations/train2017/000000000009.png", values)
    coco_stuff.convert(root, out=lambda *_: None)
    out = cv2.imread(f"{root}/annotations/train2017/000000000009_labelTrainIds.png", cv2.IMREAD_UNCHANGED)
    # person 0, fire hydrant 10, (unused 11) 255, stop sign 11, backpack 24, (unused 90) 255, banner 80, wood 170
    assert out[0].tolist() == [0, 10, 255, 11, 24, 255, 80, 170, 255]


def test_matlab_reader_against_scipy(tmp_path):
    import scipy.io as scipy_io  # test dependency (scripts/run_tests.sh installs it); jseg never imports it
    seg = np.random.default_rng(0).integers(0, 21, (5, 7)).astype(np.uint8)
    seg[0, 0] = 255
    for compress in (True, False):
        path = str(tmp_path / f"x{int(compress)}.mat")
        scipy_io.savemat(path, {"GTcls": {"Segmentation": seg, "CategoriesPresent": np.array([[1, 15]], np.uint8),
                                          "Name": "2008_000002"}, "other": np.arange(6.0).reshape(2, 3)},
                         do_compression=compress)
        m = loadmat(path)
        assert np.array_equal(m["GTcls"]["Segmentation"], seg) and m["GTcls"]["Name"] == "2008_000002"
        assert np.array_equal(m["other"], np.arange(6.0).reshape(2, 3))


def test_voc_aug(tmp_path):
    import scipy.io
    voc, sbd = str(tmp_path / "VOC2012"), str(tmp_path / "sbd")
    os.makedirs(f"{voc}/SegmentationClass")
    os.makedirs(f"{voc}/ImageSets/Segmentation")
    os.makedirs(f"{sbd}/cls")
    pal = Image.fromarray(np.array([[0, 15, 255]], np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 128, 0, 0] * 128)
    pal.save(f"{voc}/SegmentationClass/2007_000032.png")
    seg = np.array([[1, 2, 0]], np.uint8)
    scipy.io.savemat(f"{sbd}/cls/2008_000002.mat", {"GTcls": {"Segmentation": seg}}, do_compression=True)
    scipy.io.savemat(f"{sbd}/cls/2007_000033.mat", {"GTcls": {"Segmentation": seg}}, do_compression=True)
    open(f"{voc}/ImageSets/Segmentation/train.txt", "w").write("2007_000032\n")
    open(f"{voc}/ImageSets/Segmentation/val.txt", "w").write("2007_000033\n")
    open(f"{sbd}/train.txt", "w").write("2008_000002\n2007_000033\n")
    assert voc_aug.convert(voc, sbd, out=lambda *_: None) == 2
    assert open(f"{voc}/ImageSets/Segmentation/aug.txt").read().split() == ["2007_000032", "2008_000002"]
    aug = np.array(Image.open(f"{voc}/SegmentationClassAug/2008_000002.png"))
    assert aug.tolist() == [[1, 2, 0]]
    assert np.array(Image.open(f"{voc}/SegmentationClassAug/2007_000032.png")).tolist() == [[0, 15, 255]]


def test_isaid_patches(tmp_path):
    src, dst = str(tmp_path / "src"), str(tmp_path / "out")
    os.makedirs(f"{src}/train/images")
    os.makedirs(f"{src}/train/Semantic_masks/images")
    h, w = 20, 30
    cv2.imwrite(f"{src}/train/images/P0001.png", np.full((h, w, 3), 7, np.uint8))
    mask = np.zeros((h, w, 3), np.uint8)                                    # background colour (0, 0, 0)
    mask[:, 10:] = ISAID_PALETTE[1][::-1]                                   # ship, written as BGR
    mask[0, 0] = (1, 2, 3)                                                  # not an iSAID colour
    cv2.imwrite(f"{src}/train/Semantic_masks/images/P0001_instance_color_RGB.png", mask)
    lines = []
    assert isaid.convert(src, dst, patch=16, overlap=4, out=lines.append) == 6   # y: 0, 4; x: 0, 12, 14
    assert "; 1 mask pixels had no iSAID class colour" in lines[-1]
    assert isaid.starts(30, 16, 12) == [0, 12, 14] and isaid.starts(10, 16, 12) == [0]
    lab = cv2.imread(f"{dst}/ann_dir/train/P0001_0_16_0_16_instance_color_RGB.png", cv2.IMREAD_UNCHANGED)
    assert lab[0, 0] == 255 and lab[1, 0] == 0 and lab[1, 12] == 1
    ds = build_dataset(dict(type="iSAIDDataset", data_root=dst, img_dir="img_dir/train", ann_dir="ann_dir/train",
                            pipeline=LOAD))
    assert len(ds) == 6
    assert os.path.isfile(f"{dst}/img_dir/train/P0001_4_20_14_30.png")
