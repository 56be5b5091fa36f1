"""Datasets and the data pipeline (transforms run on NumPy arrays, in the loader's workers)."""
from .custom import DATASETS, CustomDataset, RepeatDataset, build_dataset
from .loader import SegDataset  # noqa: F401
from .transforms import Compose, DataError  # noqa: F401
from .ade import ADE20KDataset  # noqa: F401
from .cityscapes import CityscapesDataset  # noqa: F401
from .coco_stuff import COCOStuffDataset  # noqa: F401
from .isaid import iSAIDDataset  # noqa: F401
from .pascal_context import PascalContextDataset, PascalContextDataset59  # noqa: F401
from .voc import PascalVOCDataset  # noqa: F401
from .toy import ToyDataset, make_toy_dataset  # noqa: F401
