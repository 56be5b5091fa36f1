"""Float32 islands under mixed precision (``fp16`` configs, ``jseg/engine/amp.py``).

Jittor's auto mixed precision (``auto_mixed_precision_level`` > 0) lets an op computed on a half
input stay half.  Some computations lose too much there, and the official code keeps them in
float32: the Hamburger's NMF iterations (divisions by small sums), softmaxes (exp of large logits)
and the loss.  ``to_float32`` casts a half input up and builds the ops that follow with mixed
precision off, so they really run in float32.  Without mixed precision both are no-ops.
"""
import contextlib

import jittor as jt

HALF = ("float16", "bfloat16")


def mixed_precision_on():
    return jt.flags.auto_mixed_precision_level > 0


@contextlib.contextmanager
def float32_region():
    """Ops built inside compute in float32 (mixed precision off for them)."""
    if not mixed_precision_on():
        yield
        return
    with jt.flag_scope(auto_mixed_precision_level=0, amp_reg=0):
        yield


def to_float32(x):
    return x.float32() if str(x.dtype) in HALF else x
