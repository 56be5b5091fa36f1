"""ADE20K (SceneParsing, 150 classes): images/{training,validation}/*.jpg, annotations/*/*.png; label 0 = other -> ignored (reduce_zero_label)."""
from .custom import DATASETS, CustomDataset
from .classes import ADE20K_CLASSES, ADE20K_PALETTE


@DATASETS.register()
class ADE20KDataset(CustomDataset):
    """ADE20K (SceneParsing, 150 classes): images/{training,validation}/*.jpg, annotations/*/*.png; label 0 = other -> ignored (reduce_zero_label)."""

    CLASSES = ADE20K_CLASSES
    PALETTE = ADE20K_PALETTE

    def __init__(self, **kwargs):
        kwargs.setdefault("img_suffix", ".jpg")
        kwargs.setdefault("seg_map_suffix", ".png")
        kwargs.setdefault("reduce_zero_label", True)
        super().__init__(**kwargs)
