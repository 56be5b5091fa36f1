"""Pascal VOC 2012 (21 classes incl. background): JPEGImages/*.jpg, SegmentationClass[Aug]/*.png, a split file ImageSets/Segmentation/{train,val,aug}.txt (the SBD aug set: jseg.tools.convert_datasets.voc_aug)."""
from .custom import DATASETS, CustomDataset
from .classes import VOC_CLASSES, VOC_PALETTE


@DATASETS.register()
class PascalVOCDataset(CustomDataset):
    """Pascal VOC 2012 (21 classes incl. background): JPEGImages/*.jpg, SegmentationClass[Aug]/*.png, a split file ImageSets/Segmentation/{train,val,aug}.txt (the SBD aug set: jseg.tools.convert_datasets.voc_aug)."""

    CLASSES = VOC_CLASSES
    PALETTE = VOC_PALETTE

    def __init__(self, split, **kwargs):
        kwargs.setdefault("img_suffix", ".jpg")
        kwargs.setdefault("seg_map_suffix", ".png")
        kwargs.setdefault("reduce_zero_label", False)
        super().__init__(split=split, **kwargs)
