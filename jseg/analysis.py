"""Model size and cost: parameters and operation counts, counted the way each paper counts.

Two counting conventions are reproduced (each paper's ``tools/get_flops.py``):

``torchprofile`` (SegNeXt: ``profile_macs(model.forward_dummy, img) / 1e9``, printed as "GFLOPs",
really MACs).  torchprofile traces the PyTorch graph and counts, per aten op:

* convolution: ``prod(out) * in_channels/groups * kh * kw`` (bias not counted);
* ``bmm`` / ``matmul`` / ``linear``: ``batch * n * m * p``;
* elementwise ``mul``: ``prod(out)`` (``add``/``div``/activations/softmax: 0);
* batch/layer/group norm with affine parameters: ``prod(out)``;
* ``upsample_bilinear2d``: ``4 * prod(out)``, also for a same-size resize, which
  mmseg's ``resize`` still calls.

``nvlabs`` (SegFormer: mmcv's ``get_model_complexity_info`` module counter plus NVlabs'
``sra_flops`` term for the attention matmuls).  mmcv counts modules only:

* Conv2d: ``prod(out) * in/groups * kh * kw`` plus ``prod(out)`` for a bias;
* Linear: ``prod(in) * out_features`` plus ``out_features`` for a bias (mmcv's rule);
* BN/GN/LN: ``numel(in)``, doubled when affine (SyncBN: not counted); ReLU: ``numel(out)``;
* GELU, softmax, matmuls, elementwise ops and ``F.interpolate`` are not counted;
* NVlabs adds ``2 * N * N_reduced * C`` per efficient-attention layer.

The rules are applied per module through forward hooks, for the ops of the
*official* forward (jseg's implementation may compute the same values with
other ops).  Each module class owns its rule: a method ``count_macs(self,
convention, inputs, out)`` defined on the class itself (see
``jseg/models/layers/counting.py``); this file only holds the rules of Jittor's
own ``nn`` classes and knows no model.  A model names its paper's convention
with a class attribute ``paper_macs_convention`` (on its backbone, say), and
its non-parameter state with ``BUFFERS``.  The forward is only traced: Jittor builds the graph lazily and
nothing is executed, so counting a 2048x1024 model takes a second.
"""
import math

import jittor as jt
from jittor import nn

CONVENTIONS = ("torchprofile", "mmcv", "nvlabs")
# what each paper's get_flops counts; the final logits resize costs 4/output only in torchprofile
FINAL_RESIZE = {"torchprofile": 4, "mmcv": 0, "nvlabs": 0}
DESCRIPTION = {"torchprofile": "GMACs (torchprofile, SegNeXt's 'GFLOPs')",
               "mmcv": "GFLOPs (mmcv module counter, CGRSeg's)",
               "nvlabs": "GFLOPs (mmcv module counter + NVlabs attention term, SegFormer's)"}


def _numel(v):
    return int(math.prod(v.shape))


def count_params(module):
    """Parameters of ``module`` (state-dict entries except buffers), as PyTorch's ``sum(p.numel())``.

    Buffers are the names the module classes list in ``BUFFERS`` (BN statistics, index tables, ...)."""
    buffers = set()
    for m in module.modules():
        buffers.update(getattr(type(m), "BUFFERS", ()))
    return sum(_numel(v) for k, v in module.state_dict().items() if k.rsplit(".", 1)[-1] not in buffers)


# ----------------------------------------------------------------------------- Jittor's own nn classes

def _conv(m, convention, inputs, out):
    kh, kw = m.weight.shape[2:]
    macs = _numel(out) * (m.in_channels // m.groups) * kh * kw
    if convention != "torchprofile" and m.bias is not None:
        macs += _numel(out)   # mmcv counts the bias
    return macs


def _linear(m, convention, inputs, out):
    if convention == "torchprofile":
        return _numel(out) * m.weight.shape[1]
    return _numel(inputs[0]) * out.shape[-1] + (out.shape[-1] if m.bias is not None else 0)


def _relu(m, convention, inputs, out):
    return 0 if convention == "torchprofile" else _numel(out)


def _nothing(m, convention, inputs, out):
    return 0


FRAMEWORK_RULES = {nn.Conv2d: _conv, nn.Linear: _linear, nn.ReLU: _relu,
                   **{cls: _nothing for cls in (nn.Sequential, nn.ModuleList, nn.GELU, nn.Dropout, nn.Sigmoid)}}


def paper_ruleset(model):
    """The convention of the model's paper: the first ``paper_macs_convention`` its modules declare
    (SegFormer's MiT: 'nvlabs', CGRSeg's EfficientFormerV2: 'mmcv', SegNeXt's MSCAN: 'torchprofile');
    'torchprofile' when none does."""
    for m in model.modules():
        convention = getattr(type(m), "paper_macs_convention", None)
        if convention is not None:
            return convention
    return "torchprofile"


class MissingMacRule(KeyError):
    pass


def _rule_for(module):
    """The rule of the module's exact class (a subclass may add ops, so it needs its own rule)."""
    cls = type(module)
    if "count_macs" in cls.__dict__:
        return cls.__dict__["count_macs"]   # a plain function: rule(module, convention, inputs, out)
    if cls in FRAMEWORK_RULES:
        return FRAMEWORK_RULES[cls]
    raise MissingMacRule(f"no counting rule for {cls.__module__}.{cls.__qualname__}: give the class a method "
                         f"count_macs(self, convention, inputs, out) returning its own ops (count_macs = "
                         f"jseg.models.layers.no_own_macs if they are adds/activations only)")


def count_macs(model, shape, batch=1, ruleset="torchprofile"):
    """Operations of ``model.encode_decode`` (the official ``forward_dummy``) in eval mode on a
    ``(batch, 3, H, W)`` input, under ``ruleset`` (``'torchprofile'``, ``'mmcv'``, ``'nvlabs'``).

    Returns ``{"total": int, "backbone": int, "decode_head": int, "resize": int}`` (one entry per
    top-level child), where ``resize`` is the final bilinear resize of the logits to the input size.
    The model is put back into its previous train/eval mode.
    """
    if ruleset not in CONVENTIONS:
        raise ValueError(f"unknown ruleset {ruleset!r}; expected one of {sorted(CONVENTIONS)}")
    H, W = shape
    counts = {}
    owner = {}
    for name, m in model.named_modules():
        if name:
            owner[id(m)] = name.split(".", 1)[0]
    hooked = []
    missing = []

    def hook(m, inputs, out):
        try:
            rule = _rule_for(m)
        except MissingMacRule as e:
            missing.append(str(e))
            return
        macs = rule(m, ruleset, inputs, out)
        part = owner.get(id(m), "")
        if part or macs:
            counts[part] = counts.get(part, 0) + macs

    for m in model.modules():
        m.register_forward_hook(hook)
        hooked.append(m)
    was_training = model.is_training()
    model.eval()
    try:
        with jt.no_grad():
            logits = model.encode_decode(jt.zeros((batch, 3, H, W), "float32"))
            counts["resize"] = FINAL_RESIZE[ruleset] * _numel(logits)
            del logits
    finally:
        for m in hooked:
            m.remove_forward_hook()
        if was_training:
            model.train()
        jt.clean_graph()
    if missing:
        raise MissingMacRule(sorted(set(missing))[0])
    counts["total"] = sum(counts.values())
    return counts
