"""What every backbone shares: an optional pretrained checkpoint, loaded strictly by ``init_weights``."""
from jittor import nn

from ...config import ConfigError


class PretrainedBackbone(nn.Module):
    """``pretrained=PATH`` or mmseg's ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``.

    ``init_weights()`` loads it through the strict key map (ImageNet classifier heads are dropped and
    reported) and returns ``(report, meta)``, or None without a checkpoint.
    """

    def _set_pretrained(self, pretrained, init_cfg):
        if init_cfg is not None and pretrained is None:
            if init_cfg.get("type") != "Pretrained" or "checkpoint" not in init_cfg:
                raise ConfigError(f"{type(self).__name__} init_cfg must be dict(type='Pretrained', "
                                 f"checkpoint=PATH), got {init_cfg}")
            pretrained = init_cfg["checkpoint"]
        self.pretrained = pretrained

    def init_weights(self):
        if self.pretrained:
            from ...checkpoint import load_checkpoint
            return load_checkpoint(self, self.pretrained, strict=True, target="backbone", strict_hint=(
                "the backbone's pretrained weights (init_cfg / pretrained) must fit it: check the path, or "
                "train from scratch with --cfg-options model.backbone.init_cfg=None"))
        return None
