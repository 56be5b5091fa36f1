"""Models: registered by name in ``jseg.registry.MODELS``; ``build_segmentor(cfg.model)`` builds one."""
from ..registry import MODELS
from . import losses  # noqa: F401  (registers CrossEntropyLoss)
from .backbones.mscan import MSCAN  # noqa: F401
from .backbones.mit import MixVisionTransformer  # noqa: F401
from .backbones.efficientformer_v2 import EfficientFormerV2  # noqa: F401
from .heads.ham_head import LightHamHead, NMF2D, Hamburger  # noqa: F401
from .heads.segformer_head import SegFormerHead  # noqa: F401
from .heads.cgr_head import CGRSeg  # noqa: F401
from .segmentor import EncoderDecoder  # noqa: F401


def build_segmentor(cfg):
    """Build a segmentor from ``cfg`` (the ``model`` dict of a config)."""
    return MODELS.build(cfg)
