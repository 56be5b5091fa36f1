"""Mixed-precision training: mmseg's ``fp16`` config switch on Jittor's auto mixed precision (CUDA only).

Config, in mmseg's spelling::

    fp16 = dict(loss_scale='dynamic')      # float16 compute, dynamic loss scaling (the usual choice)
    fp16 = dict(loss_scale=512.)           # float16, a fixed scale
    fp16 = dict(dtype='bfloat16')          # bfloat16 compute: float32's range, no scaling needed

Parameters, AdamW moments and the update stay float32; Jittor runs the network's ops in the half type
(``auto_mixed_precision_level``).  The loss is multiplied by the scale before the backward pass and
the gradients divided by it before the update; a step whose gradients hold an inf or NaN is skipped
(nothing changes but the scale).  The dynamic scale follows ``torch.cuda.amp.GradScaler``'s defaults:
start at 2**16, halve on overflow, double after 2000 finite steps in a row.  The scaler's state is
saved in training checkpoints and restored by ``--resume``.  The parts the official code keeps in
float32 stay float32 here too: the Hamburger's NMF iterations, attention softmaxes and the loss
(``jseg.models.layers.precision.float32_region``).
"""
import math

import jittor as jt

from ..errors import UserError

DTYPES = ("float16", "bfloat16")


class LossScaler:
    """Loss scale for float16 gradients: ``dynamic`` (grow/back off) or a fixed value."""

    def __init__(self, init_scale=2.0 ** 16, dynamic=True, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, min_scale=1.0):
        self.scale = float(init_scale)
        self.dynamic = bool(dynamic)
        self.growth_factor, self.backoff_factor = float(growth_factor), float(backoff_factor)
        self.growth_interval, self.min_scale = int(growth_interval), float(min_scale)
        self.good_steps = 0      # finite steps since the last change of scale
        self.skipped = 0         # steps skipped for inf/NaN gradients, in all

    def update(self, finite):
        """After a step: ``finite`` says whether its gradients were all finite."""
        if not finite:
            self.skipped += 1
            self.good_steps = 0
            if self.dynamic:
                self.scale = max(self.scale * self.backoff_factor, self.min_scale)
            return
        self.good_steps += 1
        if self.dynamic and self.good_steps >= self.growth_interval:
            self.scale *= self.growth_factor
            self.good_steps = 0

    def state_dict(self):
        return {"scale": self.scale, "good_steps": self.good_steps, "skipped": self.skipped,
                "dynamic": self.dynamic}

    def load_state_dict(self, state):
        self.scale = float(state["scale"])
        self.good_steps = int(state.get("good_steps", 0))
        self.skipped = int(state.get("skipped", 0))


def parse_fp16(fp16):
    """``(dtype, scaler or None)`` for a config's ``fp16`` value (None: mixed precision off)."""
    if fp16 is None:
        return None, None
    if not isinstance(fp16, dict):
        raise UserError(f"fp16 = {fp16!r}: expected a dict like dict(loss_scale='dynamic') or "
                        "dict(dtype='bfloat16')")
    unknown = set(fp16) - {"loss_scale", "dtype"}
    if unknown:
        raise UserError(f"fp16: unknown key(s) {sorted(unknown)}; expected loss_scale and/or dtype")
    dtype = fp16.get("dtype", "float16")
    if dtype not in DTYPES:
        raise UserError(f"fp16.dtype = {dtype!r}: expected 'float16' or 'bfloat16'")
    scale = fp16.get("loss_scale", "dynamic" if dtype == "float16" else None)
    if dtype == "bfloat16":
        if scale is not None:
            raise UserError("fp16: bfloat16 has float32's range and needs no loss scale; remove loss_scale")
        return dtype, None
    if scale == "dynamic":
        return dtype, LossScaler()
    if isinstance(scale, dict):
        try:
            return dtype, LossScaler(dynamic=True, **scale)
        except TypeError as e:
            raise UserError(f"fp16.loss_scale = {scale!r}: {e}; expected init_scale, growth_factor, "
                            "backoff_factor, growth_interval, min_scale") from None
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0 and math.isfinite(scale):
        return dtype, LossScaler(init_scale=scale, dynamic=False)
    raise UserError(f"fp16.loss_scale = {scale!r}: expected 'dynamic', a positive number or a dict of "
                    "LossScaler settings")


def require_cuda(dtype, fix="remove fp16 from the config (--cfg-options fp16=None) or train on a GPU"):
    """Mixed precision runs on CUDA only: one clear refusal elsewhere."""
    if not jt.flags.use_cuda:
        raise UserError(f"fp16 (mixed precision, {dtype}) needs a CUDA GPU and this run is on the CPU; {fix}")


def all_finite(grads):
    """One reduction over every gradient (one sync): True if none holds an inf or NaN."""
    grads = [g for g in grads if g is not None]
    if not grads:
        return True
    bad = sum(jt.logical_not(jt.isfinite(g)).sum() for g in grads)
    return int(bad.item()) == 0


def scaled_step(optimizer, loss, scaler):
    """Backward of ``loss * scale``, unscale, then the update only if every gradient is finite.

    Returns True if the parameters were updated.  A skipped step leaves the parameters, the moments
    and the optimizer's step count as they were.
    """
    optimizer.backward(loss * scaler.scale)
    grads = [g for pg in optimizer.param_groups for p, g in zip(pg["params"], pg["grads"]) if not p.is_stop_grad()]
    finite = all_finite(grads)
    if finite:
        inv = 1.0 / scaler.scale
        for g in grads:
            g.update(g * inv)
        optimizer.step()
    else:
        optimizer.n_step -= 1   # backward counted it
        optimizer.zero_grad()
    scaler.update(finite)
    return finite
