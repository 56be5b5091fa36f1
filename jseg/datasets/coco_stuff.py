"""COCO-Stuff 164k (171 classes): images/{train2017,val2017}/*.jpg, annotations/*/*_labelTrainIds.png (make them with jseg.tools.convert_datasets.coco_stuff)."""
from .custom import DATASETS, CustomDataset
from .classes import COCO_STUFF_CLASSES, COCO_STUFF_PALETTE


@DATASETS.register()
class COCOStuffDataset(CustomDataset):
    """COCO-Stuff 164k (171 classes): images/{train2017,val2017}/*.jpg, annotations/*/*_labelTrainIds.png (make them with jseg.tools.convert_datasets.coco_stuff)."""

    CLASSES = COCO_STUFF_CLASSES
    PALETTE = COCO_STUFF_PALETTE

    def __init__(self, **kwargs):
        kwargs.setdefault("img_suffix", ".jpg")
        kwargs.setdefault("seg_map_suffix", "_labelTrainIds.png")
        kwargs.setdefault("reduce_zero_label", False)
        super().__init__(**kwargs)
