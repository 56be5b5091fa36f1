"""The shipped dataset configs build and run their pipelines (on small generated folders)."""
import numpy as np
import pytest

from jseg.config import Config
from jseg.datasets import build_dataset, make_toy_dataset
from jseg.tools.benchmark import bench_loader
from tests.datasets.test_datasets import write_pair
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def ade_like(tmp_path_factory):
    return make_toy_dataset(str(tmp_path_factory.mktemp("cfg") / "ade"), n_train=3, n_val=2, size=64)


def _sample(cfg_ds, i=0):
    return build_dataset(cfg_ds).get_sample(i, np.random.default_rng(0))


def test_ade20k_config(ade_like):
    cfg = Config.fromfile(f"{ROOT}/configs/_base_/datasets/ade20k.py")
    cfg.data.train.dataset.data_root = cfg.data.val.data_root = ade_like
    train = build_dataset(cfg.data.train)
    assert len(train) == 150                                               # RepeatDataset x50
    s = train.get_sample(0, np.random.default_rng(0))
    assert s["img"].shape == (3, 512, 512) and s["gt_semantic_seg"].shape == (1, 512, 512)
    v = _sample(cfg.data.val)
    assert v["img"][0].shape == (3, 512, 512) and v["img_metas"][0]["ori_shape"] == (64, 64, 3)


def test_cityscapes_config(tmp_path):
    root = str(tmp_path)
    n = "aachen_000000_000019"
    write_pair(f"{root}/leftImg8bit/train/aachen/{n}_leftImg8bit.png",
               f"{root}/gtFine/train/aachen/{n}_gtFine_labelTrainIds.png", [0, 18, 255], h=64, w=128)
    cfg = Config.fromfile(f"{ROOT}/configs/_base_/datasets/cityscapes_1024x1024.py")
    cfg.data.train.dataset.data_root = root
    s = _sample(cfg.data.train)
    assert s["img"].shape == (3, 1024, 1024) and set(np.unique(s["gt_semantic_seg"])) <= {0, 18, 255}


def test_toy_config_and_loader_benchmark(ade_like):
    cfg = Config.fromfile(f"{ROOT}/configs/_base_/datasets/toy.py")
    cfg.data.train.dataset.data_root = ade_like
    s = _sample(cfg.data.train)
    assert s["img"].shape == (3, 256, 256) and set(np.unique(s["gt_semantic_seg"])) <= set(range(6)) | {255}
    lines = []
    res = bench_loader(f"{ROOT}/configs/_base_/datasets/toy.py", data_root=ade_like, workers=(0,),
                       samples_per_gpu=2, batches=2, out=lines.append)
    assert res[0] > 0 and "images/s" in lines[-1]
