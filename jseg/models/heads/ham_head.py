"""NMF2D, Hamburger and LightHamHead of SegNeXt.

Official source: ``Visual-Attention-Network/SegNeXt`` @ c87bcae,
``mmseg/models/decode_heads/ham_head.py``; the matrix decomposition follows
Geng et al., "Is Attention Better Than Matrix Decomposition?" (ICLR 2021),
Eq. (9)-(10) multiplicative NMF updates.

Official semantics kept here:
* fresh bases ``U[0,1)`` drawn on every forward (train and test), L2-normalised over D;
* coefficient init ``softmax(inv_t * x^T bases)`` with ``inv_t`` forced to 1;
* 6 update steps in train mode, 7 in eval mode, then one more coefficient update;
* ``eps = 1e-6`` on every denominator;
* the gradient flows through every step (``grad_mode='full'``).  The original
  HamNet's one-step gradient (iterations without grad, only the last coefficient
  update differentiable) is available as ``grad_mode='onestep'``.

Bases can be injected (``inject_bases``: parity with a PyTorch run) or drawn
from a seeded NumPy generator (``seed``: reproducible results on every run and
platform); otherwise they come from Jittor's RNG (``jt.set_global_seed``).
"""
import numpy as np
import jittor as jt
from jittor import nn

from ...config import ConfigError, did_you_mean
from ...registry import MODELS
from ..layers import ConvModule, bmm, resize
from .decode_head import BaseDecodeHead

# Official ham_kwargs keys (OFF upper case; mmseg 1.x lower case) -> NMF2D argument.
_HAM_KWARGS = {
    "MD_S": "S", "MD_R": "R", "TRAIN_STEPS": "train_steps", "EVAL_STEPS": "eval_steps",
    "train_steps": "train_steps", "eval_steps": "eval_steps", "RAND_INIT": "rand_init", "rand_init": "rand_init",
    "SPATIAL": "spatial", "GRAD_MODE": "grad_mode", "grad_mode": "grad_mode", "SEED": "seed", "seed": "seed",
    # read but unused by the official NMF2D (inv_t is forced to 1, D comes from the input, ETA is for CD)
    "MD_D": None, "INV_T": None, "inv_t": None, "ETA": None,
}


class NMF2D(nn.Module):
    """Non-negative matrix factorisation of a (B, C, H, W) map, ``x ~ bases @ coef^T``.

    Args:
        S: number of channel groups (``MD_S``; D = C / S).
        R: number of bases (``MD_R``: 16 for SegNeXt-T/S, 64 for B/L).
        train_steps / eval_steps: multiplicative-update iterations (6 / 7).
        rand_init: must be True (the official setting: fresh bases every forward).
        spatial: must be True (the official setting: factorise over the spatial axis).
        grad_mode: ``'full'`` (official SegNeXt) or ``'onestep'`` (original HamNet).
        seed: if not None, bases come from ``np.random.default_rng(seed)``.
    """

    inv_t = 1  # NMF2D.__init__ forces inv_t = 1 whatever INV_T says

    def __init__(self, S=1, R=64, train_steps=6, eval_steps=7, rand_init=True, spatial=True,
                 grad_mode="full", seed=None):
        if not rand_init:
            raise NotImplementedError("NMF2D: only RAND_INIT=True (the official SegNeXt setting) is implemented")
        if not spatial:
            raise NotImplementedError("NMF2D: only SPATIAL=True (the official SegNeXt setting) is implemented")
        if grad_mode not in ("full", "onestep"):
            raise ValueError(f"NMF2D grad_mode must be 'full' or 'onestep', got {grad_mode!r}")
        self.S = S
        self.R = R
        self.train_steps = train_steps
        self.eval_steps = eval_steps
        self.grad_mode = grad_mode
        self._injected = []
        self._rng = None
        self._sample_keys = None
        self._sample_forwards = 0
        if seed is not None:
            self.seed(seed)

    @classmethod
    def from_ham_kwargs(cls, ham_kwargs):
        args = {}
        for k, v in (ham_kwargs or {}).items():
            if k not in _HAM_KWARGS:
                raise ConfigError(f"decode_head.ham_kwargs: unknown key {k!r}{did_you_mean(k, _HAM_KWARGS)}; "
                                  f"known: {sorted(_HAM_KWARGS)}")
            if _HAM_KWARGS[k] is not None:
                args[_HAM_KWARGS[k]] = v
        return cls(**args)

    # -- bases ---------------------------------------------------------------------------
    def seed(self, seed):
        """Draw future bases from ``np.random.default_rng(seed)`` (None: back to Jittor's RNG)."""
        self._rng = None if seed is None else np.random.default_rng(seed)

    def inject_bases(self, bases_list):
        """Queue already-normalised bases, one ``(B*S, D, R)`` array per coming forward, used in order."""
        self._injected.extend(np.array(b, dtype=np.float32, order="C", copy=True) for b in bases_list)

    def pending_bases(self):
        return len(self._injected)

    def set_sample_keys(self, keys):
        """Per-sample bases: sample j of the next forwards draws from ``default_rng([*keys[j], k])`` for
        the k-th forward since this call.  A sample's bases then do not depend on which process or
        batch it is in (distributed runs equal single-process ones).  ``None`` switches this off."""
        self._sample_keys = None if keys is None else [tuple(int(v) for v in k) for k in keys]
        self._sample_forwards = 0

    def _draw_bases(self, BS, D):
        if self._injected:
            bases = self._injected.pop(0)
            if bases.shape != (BS, D, self.R):
                raise ValueError(f"injected NMF bases have shape {bases.shape}, this forward needs {(BS, D, self.R)}")
            return jt.array(bases)
        if self._sample_keys is not None:
            if len(self._sample_keys) * self.S != BS:
                raise ValueError(f"{len(self._sample_keys)} sample keys set, this forward has {BS // self.S} samples")
            k = self._sample_forwards
            self._sample_forwards += 1
            raw = jt.array(np.concatenate([np.random.default_rng([*key, k]).random((self.S, D, self.R),
                                                                                 dtype=np.float32)
                                           for key in self._sample_keys]))
        elif self._rng is not None:
            raw = jt.array(self._rng.random((BS, D, self.R), dtype=np.float32))
        else:
            raw = jt.rand((BS, D, self.R), dtype="float32")
        return self.normalize(raw)

    @staticmethod
    def normalize(raw, eps=1e-12):
        """``F.normalize(raw, dim=1)``: L2 over D with the norm clamped at ``eps``."""
        norm = jt.sqrt((raw * raw).sum(dim=1, keepdims=True))
        return raw / jt.maximum(norm, eps)

    # -- multiplicative updates (paper Eq. 9-10) ------------------------------------------
    @staticmethod
    def xt_bases(x, bases):
        """``x^T B`` (B*S, N, R), computed as ``(B^T x)^T`` so the big ``x`` is not a transposed operand."""
        return bmm(bases.transpose(0, 2, 1), x).transpose(0, 2, 1)

    @staticmethod
    def update_coef(x, bases, coef):
        """``coef <- coef * (x^T B) / (coef (B^T B) + eps)``."""
        numerator = NMF2D.xt_bases(x, bases)
        denominator = bmm(coef, bmm(bases.transpose(0, 2, 1), bases))
        return coef * numerator / (denominator + 1e-6)

    @staticmethod
    def update_bases(x, bases, coef):
        """``B <- B * (x C) / (B (C^T C) + eps)``."""
        numerator = bmm(x, coef)
        denominator = bmm(bases, bmm(coef.transpose(0, 2, 1), coef))
        return bases * numerator / (denominator + 1e-6)

    def local_inference(self, x, bases):
        coef = nn.softmax(self.inv_t * self.xt_bases(x, bases), dim=-1)
        steps = self.train_steps if self.is_training() else self.eval_steps
        for _ in range(steps):
            coef = self.update_coef(x, bases, coef)
            bases = self.update_bases(x, bases, coef)
        return bases, coef

    def execute(self, x):
        B, C, H, W = x.shape
        D = C // self.S
        x = x.reshape((B * self.S, D, H * W))
        bases = self._draw_bases(B * self.S, D)
        if self.grad_mode == "onestep":
            with jt.no_grad():
                bases, coef = self.local_inference(x, bases)
            bases, coef = bases.detach(), coef.detach()
        else:
            bases, coef = self.local_inference(x, bases)
        coef = self.update_coef(x, bases, coef)
        x = bmm(bases, coef.transpose(0, 2, 1))
        return x.reshape((B, C, H, W))


class Hamburger(nn.Module):
    """``relu(x + ham_out(NMF2D(relu(ham_in(x)))))``; ham_in has a bias, ham_out has GN and no bias."""

    def __init__(self, ham_channels=512, ham_kwargs=None, norm_cfg=None):
        self.ham_in = ConvModule(ham_channels, ham_channels, 1, norm_cfg=None, act_cfg=None)
        self.ham = NMF2D.from_ham_kwargs(ham_kwargs)
        self.ham_out = ConvModule(ham_channels, ham_channels, 1, norm_cfg=norm_cfg, act_cfg=None)

    def execute(self, x):
        enjoy = nn.relu(self.ham_in(x))
        enjoy = self.ham(enjoy)
        enjoy = self.ham_out(enjoy)
        return nn.relu(x + enjoy)


@MODELS.register()
class LightHamHead(BaseDecodeHead):
    """SegNeXt decoder: concat stages 2-4 at stride 8 -> squeeze -> Hamburger -> align -> cls_seg.

    Args (besides BaseDecodeHead's):
        ham_channels: width of squeeze/Hamburger (256 for T/S, 512 B, 1024 L).
        ham_kwargs: NMF settings (official upper-case keys, e.g. ``dict(MD_R=16)``).
    """

    def __init__(self, ham_channels=512, ham_kwargs=dict(), **kwargs):
        super().__init__(input_transform="multiple_select", **kwargs)
        self.ham_channels = ham_channels
        self.squeeze = ConvModule(sum(self.in_channels), ham_channels, 1,
                                  norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.hamburger = Hamburger(ham_channels, ham_kwargs, norm_cfg=self.norm_cfg)
        self.align = ConvModule(ham_channels, self.channels, 1, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

    def execute(self, inputs):
        inputs = self._transform_inputs(inputs)
        size = inputs[0].shape[2:]
        x = jt.concat([resize(level, size, "bilinear", self.align_corners) for level in inputs], dim=1)
        x = self.squeeze(x)
        x = self.hamburger(x)
        out = self.align(x)
        return self.cls_seg(out)
