"""Pascal Context, 60 classes incl. background (label 0): JPEGImages/*.jpg, SegmentationClassContext/*.png, split ImageSets/SegmentationContext/{train,val}.txt."""
from .custom import DATASETS, CustomDataset
from .classes import PASCAL_CONTEXT_59_CLASSES, PASCAL_CONTEXT_59_PALETTE, PASCAL_CONTEXT_60_CLASSES, PASCAL_CONTEXT_60_PALETTE


@DATASETS.register()
class PascalContextDataset(CustomDataset):
    """Pascal Context, 60 classes incl. background (label 0): JPEGImages/*.jpg, SegmentationClassContext/*.png, split ImageSets/SegmentationContext/{train,val}.txt."""

    CLASSES = PASCAL_CONTEXT_60_CLASSES
    PALETTE = PASCAL_CONTEXT_60_PALETTE

    def __init__(self, split, **kwargs):
        kwargs.setdefault("img_suffix", ".jpg")
        kwargs.setdefault("seg_map_suffix", ".png")
        kwargs.setdefault("reduce_zero_label", False)
        super().__init__(split=split, **kwargs)


@DATASETS.register()
class PascalContextDataset59(CustomDataset):
    """Pascal Context, 59 classes: label 0 (background) ignored (reduce_zero_label); same layout as the 60-class set."""

    CLASSES = PASCAL_CONTEXT_59_CLASSES
    PALETTE = PASCAL_CONTEXT_59_PALETTE

    def __init__(self, split, **kwargs):
        kwargs.setdefault("img_suffix", ".jpg")
        kwargs.setdefault("seg_map_suffix", ".png")
        kwargs.setdefault("reduce_zero_label", True)
        super().__init__(split=split, **kwargs)
