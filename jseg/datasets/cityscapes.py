"""Cityscapes (19 classes): leftImg8bit/{train,val}/CITY/*_leftImg8bit.png, gtFine/{train,val}/CITY/*_gtFine_labelTrainIds.png (make them with jseg.tools.convert_datasets.cityscapes)."""
from .custom import DATASETS, CustomDataset
from .classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE


@DATASETS.register()
class CityscapesDataset(CustomDataset):
    """Cityscapes (19 classes): leftImg8bit/{train,val}/CITY/*_leftImg8bit.png, gtFine/{train,val}/CITY/*_gtFine_labelTrainIds.png (make them with jseg.tools.convert_datasets.cityscapes)."""

    CLASSES = CITYSCAPES_CLASSES
    PALETTE = CITYSCAPES_PALETTE

    def __init__(self, **kwargs):
        kwargs.setdefault("img_suffix", "_leftImg8bit.png")
        kwargs.setdefault("seg_map_suffix", "_gtFine_labelTrainIds.png")
        kwargs.setdefault("reduce_zero_label", False)
        super().__init__(**kwargs)
