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

The bases are this module's random stream (``random_stream = 'nmf_bases'``, see
``jseg.models.random_streams``): inside a ``random_streams`` context they are injected
(parity with a PyTorch run) or drawn per sample from its keys; otherwise from a seeded
NumPy generator (``seed``) or Jittor's RNG (``jt.set_global_seed``).
"""
import numpy as np
import jittor as jt
from jittor import nn

from ...checkpoint import CheckpointRules, same_names
from ...config import ConfigError, did_you_mean
from ...registry import MODELS
from ..layers import ConvModule, bmm, float32_region, no_own_macs, resize, softmax, to_float32
from ..random_streams import current as current_streams
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
    random_stream = "nmf_bases"  # (B*S, D, R) L2-normalised bases, one array per forward

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
        self._rng = None
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

    def _draw_bases(self, BS, D):
        streams = current_streams()
        if streams is not None:
            bases = streams.take_injected(self.random_stream)
            if bases is not None:
                if bases.shape != (BS, D, self.R):
                    raise ValueError(f"injected NMF bases have shape {bases.shape}, this forward needs "
                                     f"{(BS, D, self.R)}")
                return jt.array(bases)
            raw = streams.uniform(BS // self.S, (self.S, D, self.R))
            if raw is not None:
                return self.normalize(jt.array(raw))
        if self._rng is not None:
            return self.normalize(jt.array(self._rng.random((BS, D, self.R), dtype=np.float32)))
        return self.normalize(jt.rand((BS, D, self.R), dtype="float32"))

    @staticmethod
    def from_raw_draws(raw):
        """A reference's raw ``U[0,1)`` draws -> the bases (``F.normalize`` over D, eps 1e-12), in NumPy."""
        raw = np.asarray(raw, dtype=np.float32)
        return raw / np.maximum(np.sqrt((raw * raw).sum(axis=-2, keepdims=True)), 1e-12)

    @staticmethod
    def normalize(raw, eps=1e-12):
        """``F.normalize(raw, dim=1)``: L2 over D with the norm clamped at ``eps``."""
        norm = jt.sqrt((raw * raw).sum(dim=1, keepdims=True))
        return raw / jt.maximum(norm, eps)

    # -- multiplicative updates (paper Eq. 9-10) ------------------------------------------
    @staticmethod
    def xt_bases(x, bases):
        """``x^T B`` (B*S, N, R), computed as ``(B^T x)^T`` so the big ``x`` is not a transposed operand."""
        return bmm(bases, x, trans_a=True).transpose(0, 2, 1)

    @staticmethod
    def update_coef(x, bases, coef):
        """``coef <- coef * (x^T B) / (coef (B^T B) + eps)``."""
        numerator = NMF2D.xt_bases(x, bases)
        denominator = bmm(coef, bmm(bases, bases, trans_a=True))
        return coef * numerator / (denominator + 1e-6)

    @staticmethod
    def update_bases(x, bases, coef):
        """``B <- B * (x C) / (B (C^T C) + eps)``."""
        numerator = bmm(x, coef)
        denominator = bmm(bases, bmm(coef, coef, trans_a=True))
        return bases * numerator / (denominator + 1e-6)

    def local_inference(self, x, bases):
        coef = softmax(self.inv_t * self.xt_bases(x, bases), dim=-1)
        steps = self.train_steps if self.is_training() else self.eval_steps
        for _ in range(steps):
            coef = self.update_coef(x, bases, coef)
            bases = self.update_bases(x, bases, coef)
        return bases, coef

    def execute(self, x):
        with float32_region():  # mixed precision: the NMF iterations in float32, as the official code
            return self._execute(to_float32(x))

    def _execute(self, x):
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
        x = bmm(bases, coef, trans_b=True)
        return x.reshape((B, C, H, W))

    def onnx(self, g, x, channels):
        """The inference forward (``eval_steps`` updates) of a ``channels``-wide map.  The bases are the
        graph input ``nmf_bases`` (B*S, D, R), or with ``g.random_mode = seed`` constants:
        ``np.random.default_rng(seed)``'s draw for one image (what ``NMF2D(seed=seed)`` uses for a batch
        of one), the same for every image."""
        S, R = self.S, self.R
        D = channels // S
        flat = g.reshape(g.reshape(x, [0, 0, -1]), [-1, D, 0])                       # (B*S, D, N)
        flat_t = g.transpose(flat, [0, 2, 1])                                        # (B*S, N, D)
        if g.random_mode is None:
            bases = g.input(self.random_stream, [g.batch * S if isinstance(g.batch, int) else f"{g.batch}*{S}", D, R])
        else:
            one = self.from_raw_draws(np.random.default_rng(g.random_mode).random((S, D, R), dtype=np.float32))
            batch = g.shape(x, 0, 1)
            tiled = g.op("Expand", g.const(one[None], self.random_stream),
                         g.concat_shape(batch, [S, D, R]))
            bases = g.reshape(tiled, [-1, D, R])

        def xt_bases(b):
            return g.op("MatMul", flat_t, b)                                         # (B*S, N, R)

        def update_coef(b, coef):
            den = g.matmul(coef, g.matmul(b, b, trans_a=True))
            return g.op("Div", g.op("Mul", coef, xt_bases(b)), g.op("Add", den, g.const(1e-6)))

        def update_bases(b, coef):
            den = g.matmul(b, g.matmul(coef, coef, trans_a=True))
            return g.op("Div", g.op("Mul", b, g.matmul(flat, coef)), g.op("Add", den, g.const(1e-6)))

        coef = g.softmax(xt_bases(bases), axis=-1)                                   # inv_t = 1
        for _ in range(self.eval_steps):
            coef = update_coef(bases, coef)
            bases = update_bases(bases, coef)
        coef = update_coef(bases, coef)
        return g.reshape(g.matmul(bases, coef, trans_b=True), g.shape(x))


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

    def onnx(self, g, x):
        enjoy = g.call(self.ham, g.op("Relu", g.call(self.ham_in, x)), self.ham_in.conv.out_channels)
        enjoy = g.call(self.ham_out, enjoy)
        return g.op("Relu", g.op("Add", x, enjoy))


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

    def onnx(self, g, inputs):
        inputs = self._transform_inputs(inputs)
        levels = [inputs[0]] + [g.resize(level, like=inputs[0], align_corners=self.align_corners)
                                for level in inputs[1:]]
        x = g.op("Concat", *levels, axis=1)
        for m in (self.squeeze, self.hamburger, self.align):
            x = g.call(m, x)
        return self.cls_seg_onnx(g, x)


# ----------------------------------------------------------------------------- operation counts (jseg.analysis)
# SegNeXt's get_flops uses torchprofile; mmcv's module counter sees only the convs and norms here.

def nmf_macs(BS, D, N, R, steps):
    """MACs of the official NMF2D forward on (BS, D, N) with R bases and ``steps`` updates."""
    xt_b = BS * N * D * R                     # x^T @ bases
    coef_upd = xt_b + BS * (R * D * R + N * R * R) + BS * N * R   # numerator, coef @ (B^T B), coef *
    bases_upd = BS * D * N * R + BS * (R * N * R + D * R * R) + BS * D * R
    init = xt_b + BS * N * R                 # x^T bases, inv_t *
    reconstruct = BS * D * R * N             # bases @ coef^T
    return init + steps * (coef_upd + bases_upd) + coef_upd + reconstruct


def _nmf_macs(self, convention, inputs, out):
    if convention != "torchprofile":
        return 0
    B, C, H, W = inputs[0].shape
    steps = self.train_steps if self.is_training() else self.eval_steps
    return nmf_macs(B * self.S, C // self.S, H * W, self.R, steps)


def _head_macs(self, convention, inputs, out):
    if convention != "torchprofile":
        return 0
    feats = [inputs[0][i] for i in self.in_index]
    H, W = feats[0].shape[2:]
    # every selected level is bilinearly resized to stage-2 size (the first one to its own size)
    return sum(4 * f.shape[0] * f.shape[1] * H * W for f in feats)


NMF2D.count_macs = _nmf_macs
LightHamHead.count_macs = _head_macs
Hamburger.count_macs = no_own_macs


LightHamHead.checkpoint_rules = CheckpointRules(to_mmseg1=same_names)   # mmseg 1.x keeps the official names
