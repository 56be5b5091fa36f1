"""iSAID (16 classes incl. background): img_dir/*.png patches, ann_dir/*_instance_color_RGB.png class-id maps (make them with jseg.tools.convert_datasets.isaid)."""
from .custom import DATASETS, CustomDataset
from .classes import ISAID_CLASSES, ISAID_PALETTE


@DATASETS.register()
class iSAIDDataset(CustomDataset):
    """iSAID (16 classes incl. background): img_dir/*.png patches, ann_dir/*_instance_color_RGB.png class-id maps (make them with jseg.tools.convert_datasets.isaid)."""

    CLASSES = ISAID_CLASSES
    PALETTE = ISAID_PALETTE

    def __init__(self, **kwargs):
        kwargs.setdefault("img_suffix", ".png")
        kwargs.setdefault("seg_map_suffix", "_instance_color_RGB.png")
        kwargs.setdefault("reduce_zero_label", False)
        super().__init__(**kwargs)
