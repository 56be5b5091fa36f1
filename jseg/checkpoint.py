"""Reading PyTorch/Jittor checkpoints, explicit key maps, strict loading, atomic saving.

Layouts understood (torch is never needed: ``jt.load`` parses ``.pth`` files):

* official segmentor checkpoints ``{'meta', 'state_dict'[, 'optimizer']}`` with
  ``backbone.`` / ``decode_head.`` keys (mmseg 0.x, SegNeXt release);
* the mmseg 1.x key layout (``...mlp.dwconv.weight`` instead of ``...mlp.dwconv.dwconv.weight``);
* ImageNet MSCAN checkpoints ``{'state_dict': {unprefixed backbone keys, head.*}}`` and NVlabs
  ImageNet MiT checkpoints ``mit_b*.pth`` (flat ``{key: tensor}``); the classifier ``head.*`` is
  dropped and reported;
* ImageNet EfficientFormerV2 checkpoints ``{'model': ...}`` (``head``, ``dist_head`` and the final
  ``norm`` dropped and reported) and CGRSeg checkpoints of either ``linear_fuse`` spelling;
* the mmseg 1.x MiT layout (``layers.{i}.{0,1,2}...``, fused ``in_proj``, 1x1-conv FFN weights),
  converted to NVlabs' names and shapes (``mit_mmseg1_to_official``);
* plain state dicts (``{key: tensor}``), a ``module.`` prefix (DataParallel) stripped;
* jseg's own ``.pkl`` (``{'meta', 'state_dict': {key: ndarray}}``) and ``.npz`` state dicts.

Every key of the checkpoint ends up in exactly one of: loaded (possibly
renamed), dropped (with a reason), unexpected; every model key not loaded is
missing.  ``load_checkpoint`` refuses (``CheckpointError``) when anything is
missing, unexpected or mis-shaped unless ``strict=False``.
"""
import os
import pickle
import re
from collections import OrderedDict

import numpy as np
import jittor as jt

from .errors import UserError

_SCALAR_KEYS = ("num_batches_tracked",)
# integer buffers PyTorch keeps as int64 (Jittor holds int32): written back as int64
_INT64_KEYS = ("num_batches_tracked", "attention_bias_idxs", "attention_bias_idxs_seg")


class CheckpointError(UserError):
    """A checkpoint that cannot be read or does not fit the model; the message names the file."""


# ----------------------------------------------------------------------------- reading


def _to_numpy(v):
    if isinstance(v, jt.Var):
        return v.numpy()
    if isinstance(v, np.ndarray):
        return v
    if hasattr(v, "detach") and hasattr(v, "cpu"):  # a torch tensor, if torch happens to be installed
        return v.detach().cpu().numpy()
    return np.asarray(v)


def read_checkpoint(path):
    """Read a checkpoint file -> ``(state_dict: OrderedDict[str, ndarray], meta: dict)``."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                obj = {k: z[k] for k in z.files}
        elif ext == ".pkl":
            with open(path, "rb") as f:
                obj = pickle.load(f)
        else:  # .pth / .pt / .bin: PyTorch zip or legacy pickle
            obj = jt.load(path)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from e
    return unwrap_checkpoint(obj, path)


def unwrap_checkpoint(obj, name="checkpoint"):
    """``{'state_dict': ...}`` / ``{'model': ...}`` / plain dict -> ``(OrderedDict of ndarrays, meta)``."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{name}: expected a dict (a state dict or {{'state_dict': ...}}), "
                              f"got {type(obj).__name__}")
    meta = {}
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        sd, meta = obj["state_dict"], obj.get("meta") or {}
    elif "model" in obj and isinstance(obj["model"], dict):
        sd, meta = obj["model"], obj.get("meta") or {}
    else:
        sd = obj
    out = OrderedDict()
    for k, v in sd.items():
        if not isinstance(k, str):
            raise CheckpointError(f"{name}: state-dict key {k!r} is not a string")
        if isinstance(v, dict):
            raise CheckpointError(f"{name}: entry {k!r} is a dict, not a tensor; is this a state dict?")
        out[k[len("module."):] if k.startswith("module.") else k] = _to_numpy(v)
    if not out:
        raise CheckpointError(f"{name}: the state dict is empty")
    return out, dict(meta)


# ----------------------------------------------------------------------------- key maps

# mmseg 1.x inlines MSCAN's DWConv wrapper: block{i}.{j}.mlp.dwconv.{w,b} <-> official ...mlp.dwconv.dwconv.{w,b}
_MM1_RENAMES = [(re.compile(r"^(.*block\d+\.\d+\.mlp\.dwconv)\.(weight|bias)$"), r"\1.dwconv.\2")]
_BACKBONE_HINTS = ("patch_embed", "block", "norm", "network.")
# ImageNet classifiers: MSCAN / MiT ``head``; EfficientFormerV2 ``head`` + ``dist_head`` (+ a final ``norm``)
_IMAGENET_HEADS = ("head.", "dist_head.")
_SEG_ONLY_KEYS = ("attention_biases_seg", "attention_bias_idxs_seg")


class LoadReport:
    """What a key map did: layout, renamed/dropped keys, and the strict-check findings."""

    def __init__(self, layout):
        self.layout = layout
        self.renamed = []      # (checkpoint key, model key)
        self.dropped = []      # (checkpoint key, reason)
        self.missing = []      # model keys absent from the checkpoint
        self.unexpected = []   # checkpoint keys the model does not have
        self.mismatched = []   # (key, checkpoint shape, model shape)
        self.initialised = []  # model keys an ImageNet checkpoint cannot have; they keep their init
        self.loaded = 0

    @property
    def ok(self):
        return not (self.missing or self.unexpected or self.mismatched)

    @staticmethod
    def _fmt(items, limit=20):
        items = [str(i) for i in items]
        more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
        return ", ".join(items[:limit]) + more

    def problems(self):
        lines = []
        if self.missing:
            lines.append(f"missing keys ({len(self.missing)}): {self._fmt(self.missing)}")
        if self.unexpected:
            lines.append(f"unexpected keys ({len(self.unexpected)}): {self._fmt(self.unexpected)}")
        if self.mismatched:
            lines.append(f"wrong shapes ({len(self.mismatched)}): " + self._fmt(
                f"{k} checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched))
        return lines

    def __str__(self):
        lines = [f"checkpoint layout: {self.layout}; loaded {self.loaded} tensors"]
        if self.renamed:
            lines.append(f"renamed ({len(self.renamed)}): " + self._fmt([f"{a} -> {b}" for a, b in self.renamed], 5))
        if self.dropped:
            reasons = {}
            for k, why in self.dropped:
                reasons.setdefault(why, []).append(k)
            for why, keys in reasons.items():
                lines.append(f"dropped ({len(keys)}, {why}): {self._fmt(keys, 5)}")
        if self.initialised:
            lines.append(f"kept at initialisation ({len(self.initialised)}, segmentation-only attention-bias "
                         f"tables absent from ImageNet checkpoints): {self._fmt(self.initialised, 5)}")
        return "\n".join(lines + self.problems())


def detect_layout(keys):
    keys = list(keys)
    if any(k.startswith(("backbone.", "decode_head.")) for k in keys):
        return "segmentor"
    if any(k.startswith(_BACKBONE_HINTS) for k in keys):
        return "backbone"
    return "unknown"


def map_keys(ckpt_keys, model_keys, target="segmentor"):
    """Explicit key map: ``{checkpoint key: model key}`` plus a LoadReport accounting for every key.

    ``target``: ``'segmentor'`` (model keys start with backbone./decode_head.) or ``'backbone'``.
    """
    model_keys = set(model_keys)
    layout = detect_layout(ckpt_keys)
    report = LoadReport(layout)
    mapping = OrderedDict()
    for k in ckpt_keys:
        dst = k
        if target == "segmentor" and layout == "backbone":
            if k.startswith(_IMAGENET_HEADS):
                report.dropped.append((k, "ImageNet classifier head"))
                continue
            if k.startswith("norm.") and "backbone." + k not in model_keys:
                report.dropped.append((k, "ImageNet classifier's final norm"))
                continue
            dst = "backbone." + k
        elif target == "backbone" and layout == "segmentor":
            if not k.startswith("backbone."):
                report.dropped.append((k, "not a backbone key"))
                continue
            dst = k[len("backbone."):]
        elif target == "backbone" and layout == "backbone" and k.startswith(_IMAGENET_HEADS):
            report.dropped.append((k, "ImageNet classifier head"))
            continue
        elif target == "backbone" and layout == "backbone" and k.startswith("norm.") and k not in model_keys:
            report.dropped.append((k, "ImageNet classifier's final norm"))
            continue
        if dst not in model_keys:
            for pattern, repl in _MM1_RENAMES:
                alt = pattern.sub(repl, dst)
                if alt != dst and alt in model_keys:
                    report.renamed.append((k, alt))
                    dst = alt
                    break
        if dst in model_keys:
            if dst in mapping.values():
                raise CheckpointError(f"two checkpoint keys map to model key {dst!r}")
            mapping[k] = dst
        else:
            report.unexpected.append(k)
    report.missing = sorted(model_keys - set(mapping.values()))
    if layout == "backbone":
        # ImageNet EfficientFormerV2 has no segmentation bias tables: they keep their init (zeros, recomputed
        # index tables), as the authors' non-strict load leaves them
        report.initialised = [k for k in report.missing if k.endswith(_SEG_ONLY_KEYS)]
        report.missing = [k for k in report.missing if not k.endswith(_SEG_ONLY_KEYS)]
    return mapping, report


_MM1_MIT = re.compile(r"^(backbone\.)?layers\.(\d+)\.([012])\.(.+)$")
_MM1_MIT_FFN = {"0": "mlp.fc1", "1": "mlp.dwconv.dwconv", "4": "mlp.fc2"}


def mit_mmseg1_to_official(state_dict):
    """mmseg-1.x MiT keys -> NVlabs names and shapes (the inverse of mmseg's ``mit2mmseg.py``).

    ``layers.{i}.0.projection`` -> ``patch_embed{i+1}.proj``; ``layers.{i}.2`` -> ``norm{i+1}``;
    in block ``layers.{i}.1.{j}``: ``attn.attn.in_proj_{weight,bias}`` (rows [q; k; v]) is split into
    ``attn.q`` and ``attn.kv`` (rows [k; v]), ``attn.attn.out_proj`` -> ``attn.proj``,
    ``ffn.layers.{0,1,4}`` -> ``mlp.fc1`` / ``mlp.dwconv.dwconv`` / ``mlp.fc2`` (1x1-conv weights
    reshaped to Linear).  A ``backbone.`` prefix is kept.  Returns ``(state_dict, renamed)``;
    a state dict without such keys comes back unchanged.
    """
    if not any(_MM1_MIT.match(k) for k in state_dict):
        return state_dict, []
    out, renamed = OrderedDict(), []
    for k, v in state_dict.items():
        m = _MM1_MIT.match(k)
        if not m:
            out[k] = v
            continue
        prefix, stage, part, rest = m.group(1) or "", int(m.group(2)) + 1, m.group(3), m.group(4)
        if part == "0":
            new = {f"{prefix}patch_embed{stage}.{rest.replace('projection.', 'proj.', 1)}": v}
        elif part == "2":
            new = {f"{prefix}norm{stage}.{rest}": v}
        else:
            j, sub = rest.split(".", 1)
            base = f"{prefix}block{stage}.{j}."
            if sub.startswith("attn.attn.in_proj_"):
                kind = sub[len("attn.attn.in_proj_"):]
                C = v.shape[0] // 3
                new = {base + f"attn.q.{kind}": np.ascontiguousarray(v[:C]),
                       base + f"attn.kv.{kind}": np.ascontiguousarray(v[C:])}
            elif sub.startswith("attn.attn.out_proj."):
                new = {base + "attn.proj." + sub[len("attn.attn.out_proj."):]: v}
            elif sub.startswith("ffn.layers."):
                idx, kind = sub[len("ffn.layers."):].split(".", 1)
                if idx not in _MM1_MIT_FFN:
                    raise CheckpointError(f"{k}: unknown mmseg-1.x MixFFN layer index {idx} (expected 0, 1 or 4)")
                if idx in ("0", "4") and kind == "weight":
                    v = v.reshape(v.shape[0], v.shape[1])
                new = {base + f"{_MM1_MIT_FFN[idx]}.{kind}": v}
            else:  # norm1, norm2, attn.sr, attn.norm keep their names
                new = {base + sub: v}
        for dst, val in new.items():
            out[dst] = val
            renamed.append((k, dst))
    return out, renamed


def to_official_keys(state_dict):
    """Rename mmseg-1.x keys to the official layout (used by the converter without a model)."""
    state_dict, renamed = mit_mmseg1_to_official(state_dict)
    out = OrderedDict()
    for k, v in state_dict.items():
        dst = k
        for pattern, repl in _MM1_RENAMES:
            if pattern.match(k) and ".dwconv.dwconv." not in k:
                dst = pattern.sub(repl, k)
                renamed.append((k, dst))
        out[dst] = v
    return out, renamed


# ----------------------------------------------------------------------------- model <-> arrays


def _same_shape(a, b, key):
    a, b = tuple(a), tuple(b)
    if a == b:
        return True
    # 0-d buffers: PyTorch saves (), Jittor holds them as (1,)
    return key.endswith(_SCALAR_KEYS) and int(np.prod(a)) == int(np.prod(b)) == 1


def model_state_dict(model):
    """``{key: ndarray}`` with the official shapes/dtypes (``num_batches_tracked``: 0-d int64)."""
    out = OrderedDict()
    for k, v in model.state_dict().items():
        a = v.numpy()
        if k.endswith(_SCALAR_KEYS):
            a = np.asarray(a.reshape(()), dtype=np.int64)
        elif k.endswith(_INT64_KEYS):
            a = a.astype(np.int64)
        out[k] = a
    return out


STRICT_HINT = "pass strict=False to load the matching keys anyway"


def load_state_dict(model, state_dict, strict=True, target=None, name="checkpoint", strict_hint=STRICT_HINT):
    """Load ``{key: array}`` into ``model`` through the key map; returns the LoadReport.

    ``strict``: raise ``CheckpointError`` naming missing / unexpected / wrong-shape keys.
    Nothing is written into the model when the strict check fails.  ``strict_hint``: what the
    error tells the user to do about it (each command says what is true for it; None: nothing).
    ``target``: ``'segmentor'``, ``'backbone'`` (inferred from the model's keys when None), or any other
    value for a bare module (keys used as they are).
    """
    params = model.state_dict()
    if target is None:
        target = "segmentor" if any(k.startswith("backbone.") for k in params) else "backbone"
    state_dict, mit_renamed = mit_mmseg1_to_official(state_dict)
    mapping, report = map_keys(list(state_dict), list(params), target)
    report.renamed[:0] = mit_renamed
    for src, dst in mapping.items():
        shape = state_dict[src].shape
        if not _same_shape(shape, params[dst].shape, dst):
            report.mismatched.append((dst, shape, tuple(params[dst].shape)))
    if strict and not report.ok:
        hint = ""
        if any(k.startswith(("decode_head.fusion_conv.", "decode_head.convs.")) for k in report.unexpected):
            hint = ("\n(this checkpoint has mmseg-1.x's SegformerHead, a different head from NVlabs' all-MLP "
                    "decoder: only its backbone can be loaded, e.g. load_checkpoint(model.backbone, path))")
        if "decode_head.linear_fuse.weight" in report.unexpected and \
                "decode_head.linear_fuse.conv.weight" in report.missing:
            hint = ("\n(a CGRSeg checkpoint from before the authors' commit 8ef4bcf, where linear_fuse was a plain "
                    "conv with bias: build the head with --cfg-options model.decode_head.legacy_linear_fuse=True)")
        elif "decode_head.linear_fuse.conv.weight" in report.unexpected and \
                "decode_head.linear_fuse.weight" in report.missing:
            hint = ("\n(a CGRSeg checkpoint with the current linear_fuse (ConvModule: conv + BN + ReLU): build the "
                    "head without legacy_linear_fuse)")
        raise CheckpointError(f"{name} does not match the model:\n  " + "\n  ".join(report.problems()) + hint
                              + (f"\n({strict_hint})" if strict_hint else ""))
    bad = {k for k, _, _ in report.mismatched}
    for src, dst in mapping.items():
        if dst in bad:
            continue
        var = params[dst]
        # an owned C-contiguous copy: jt.array on views into an unpickled buffer segfaulted later (observed)
        value = np.array(state_dict[src], dtype=str(var.dtype), order="C", copy=True).reshape(var.shape)
        var.update(jt.array(value))
        report.loaded += 1
    jt.sync_all()
    return report


def load_checkpoint(model, path, strict=True, target=None, logger=None, strict_hint=STRICT_HINT):
    """Read ``path`` (.pth/.pkl/.npz) and load it into ``model``; returns ``(report, meta)``."""
    state_dict, meta = read_checkpoint(path)
    report = load_state_dict(model, state_dict, strict=strict, target=target, name=path, strict_hint=strict_hint)
    if logger is not None:
        logger(f"loaded {path}\n{report}")
    return report, meta


def save_checkpoint(path, model=None, state_dict=None, meta=None, optimizer=None):
    """Write ``{'meta', 'state_dict'[, 'optimizer']}`` as a pickle of NumPy arrays, atomically."""
    if state_dict is None:
        state_dict = model_state_dict(model)
    obj = {"meta": dict(meta or {}), "state_dict": OrderedDict((k, _to_numpy(v)) for k, v in state_dict.items())}
    if optimizer is not None:
        obj["optimizer"] = optimizer
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            pickle.dump(obj, f, protocol=4)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a quota: name the file (a failed write's error names none)
        raise OSError(e.errno, f"cannot write checkpoint ({e.strerror or e})", path) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
