"""Reading PyTorch/Jittor checkpoints, explicit key maps, strict loading, atomic saving.

Layouts understood (torch is never needed: ``jt.load`` parses ``.pth`` files):

* segmentor checkpoints ``{'meta', 'state_dict'[, 'optimizer']}`` with ``backbone.`` /
  ``decode_head.`` keys; ImageNet backbone checkpoints (``{'state_dict': ...}``,
  ``{'model': ...}`` or flat), whose classifier keys are dropped and reported;
* plain state dicts (``{key: tensor}``), a ``module.`` prefix (DataParallel) stripped;
* jseg's own ``.pkl`` (``{'meta', 'state_dict': {key: ndarray}}``) and ``.npz`` state dicts;
* JSeg's (the Jittor port's) training ``.pkl``: ``jt.save({'meta': {'jseg_version', 'iter', ...},
  'model': state_dict of Vars, 'scheduler', 'optimizer'})`` (``python/jseg/runner/runner.py`` in
  github.com/Jittor/JSeg).  Its SegNeXt and SegFormer keys are the official names, but Jittor's
  BatchNorm keeps no ``num_batches_tracked``: those counters are left at 0 and reported (the official
  BN layers use a fixed momentum, so the counter changes nothing).

What is particular to one model family (another release's key names, which prefixes
mark its ImageNet checkpoints, which classifier keys to drop, what a failed load
means) is that family's ``CheckpointRules``, kept beside the model and applied here
without naming it.

Every key of the checkpoint ends up in exactly one of: loaded (possibly
renamed), dropped (with a reason), unexpected; every model key not loaded is
missing.  ``load_checkpoint`` refuses (``CheckpointError``) when anything is
missing, unexpected or mis-shaped unless ``strict=False``.
"""
import os
import pickle
from collections import OrderedDict

import numpy as np
import jittor as jt

from .errors import UserError

_SCALAR_KEYS = ("num_batches_tracked",)


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


FORMAT_KEY, JSEG_JITTOR = "checkpoint_format", "JSeg (Jittor) training checkpoint"
# keys a JSeg checkpoint cannot have, and why
JSEG_ABSENT = {"num_batches_tracked": "Jittor's BatchNorm keeps no counter; left at 0"}


def is_jseg_jittor(obj):
    """True for JSeg's ``{'meta': {'jseg_version', ...}, 'model', 'scheduler'/'optimizer'}`` (not jseg's own,
    which keeps its weights under ``state_dict``)."""
    meta = obj.get("meta")
    return (isinstance(obj.get("model"), dict) and isinstance(meta, dict) and "jseg_version" in meta
            and ("scheduler" in obj or "optimizer" in obj))


def unwrap_checkpoint(obj, name="checkpoint"):
    """``{'state_dict': ...}`` / ``{'model': ...}`` / plain dict -> ``(OrderedDict of ndarrays, meta)``."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{name}: expected a dict (a state dict or {{'state_dict': ...}}), "
                              f"got {type(obj).__name__}")
    meta = {}
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        sd, meta = obj["state_dict"], obj.get("meta") or {}
    elif "model" in obj and isinstance(obj["model"], dict):
        sd, meta = obj["model"], dict(obj.get("meta") or {})
        if is_jseg_jittor(obj):
            meta[FORMAT_KEY] = JSEG_JITTOR
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


class CheckpointRules:
    """What one model family knows about the checkpoints released for it.

    A model class (a backbone, a head) carries ``checkpoint_rules = CheckpointRules(...)``.  Loading into
    a model applies the rules of every class in it; converting without a model (``convert_checkpoint``
    without a config) applies those of every registered model class.  Nothing here names a model.

    Args:
        backbone_prefixes: key prefixes that mark an unprefixed backbone (ImageNet) checkpoint.
        classifier_keys: ``{prefix: reason}``: keys of such a checkpoint that the model lacks and that are
            dropped (and reported) rather than refused: ImageNet classifier heads, a final norm.
        init_only_suffixes: model keys an ImageNet checkpoint cannot have; they keep their initial values.
        convert: ``state_dict -> (state_dict, [(old key, new key)])``: another released layout (mmseg 1.x)
            to the official names and shapes; keys it does not know come back unchanged.
        hint: ``LoadReport -> str or None``: what a failed strict load means for this family.
        to_mmseg1: ``state_dict -> (state_dict, renamed)``: official names -> mmseg 1.x's, for export
            (``same_names`` when mmseg 1.x uses the official ones); None: mmseg 1.x has no such layout.
    """

    def __init__(self, backbone_prefixes=(), classifier_keys=None, init_only_suffixes=(), convert=None, hint=None,
                 to_mmseg1=None):
        self.backbone_prefixes = tuple(backbone_prefixes)
        self.classifier_keys = dict(classifier_keys or {})
        self.init_only_suffixes = tuple(init_only_suffixes)
        self.convert = convert
        self.hint = hint
        self.to_mmseg1 = to_mmseg1


def same_names(state_dict):
    """A ``to_mmseg1`` for modules whose mmseg-1.x keys are the official ones."""
    return state_dict, []


def to_mmseg1_layout(model, state_dict):
    """The model's official state dict in mmseg 1.x's names: ``(state_dict, renamed)``.

    Each part of the segmentor (backbone, heads) must say how (``CheckpointRules.to_mmseg1``); a part
    that cannot is named in the ``CheckpointError``."""
    parts = [(name, m) for name, m in (("backbone", getattr(model, "backbone", None)),
                                       ("decode_head", getattr(model, "decode_head", None)),
                                       ("auxiliary_head", getattr(model, "auxiliary_head", None))) if m is not None]
    renamed = []
    for name, part in parts:
        rules = getattr(type(part), "checkpoint_rules", None)
        if rules is None or rules.to_mmseg1 is None:
            raise CheckpointError(f"{name} {type(part).__name__} has no mmseg-1.x layout; export the official "
                                  "layout instead")
        state_dict, done = rules.to_mmseg1(state_dict)
        renamed += done
    return state_dict, renamed


def _rules_of(classes):
    rules = []
    for cls in classes:
        r = getattr(cls, "checkpoint_rules", None)
        if r is not None and all(r is not seen for seen in rules):
            rules.append(r)
    return rules


def model_rules(model):
    """The ``CheckpointRules`` of the classes in ``model`` (each once, in module order)."""
    return _rules_of(type(m) for m in model.modules())


def registered_rules():
    """The ``CheckpointRules`` of every registered model class (for conversions without a model)."""
    from .registry import MODELS
    return _rules_of(MODELS.get(name) for name in MODELS.names())


class LoadReport:
    """What a key map did: layout, renamed/dropped keys, and the strict-check findings."""

    def __init__(self, layout):
        self.layout = layout
        self.renamed = []      # (checkpoint key, model key)
        self.dropped = []      # (checkpoint key, reason)
        self.missing = []      # model keys absent from the checkpoint
        self.unexpected = []   # checkpoint keys the model does not have
        self.mismatched = []   # (key, checkpoint shape, model shape)
        self.initialised = []  # model keys the checkpoint's kind cannot have; they keep their init
        self.initialised_why = "keys an ImageNet checkpoint cannot have"
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
            lines.append(f"kept at initialisation ({len(self.initialised)}, {self.initialised_why}): "
                         f"{self._fmt(self.initialised, 5)}")
        return "\n".join(lines + self.problems())


def detect_layout(keys, rules):
    """``'segmentor'`` (backbone./decode_head. keys), ``'backbone'`` (a prefix some rules name) or ``'unknown'``."""
    keys = list(keys)
    if any(k.startswith(("backbone.", "decode_head.")) for k in keys):
        return "segmentor"
    prefixes = tuple(p for r in rules for p in r.backbone_prefixes)
    if prefixes and any(k.startswith(prefixes) for k in keys):
        return "backbone"
    return "unknown"


def convert_layouts(state_dict, rules):
    """Apply every rule's ``convert`` (other released layouts -> official names): ``(state_dict, renamed)``."""
    renamed = []
    for r in rules:
        if r.convert is not None:
            state_dict, done = r.convert(state_dict)
            renamed.extend(done)
    return state_dict, renamed


def to_official_keys(state_dict):
    """Rename every layout a registered model knows to the official names (the converter without a model)."""
    return convert_layouts(state_dict, registered_rules())


def map_keys(ckpt_keys, model_keys, target="segmentor", rules=()):
    """Explicit key map: ``{checkpoint key: model key}`` plus a LoadReport accounting for every key.

    ``target``: ``'segmentor'`` (model keys start with backbone./decode_head.), ``'backbone'``, or
    anything else for a bare module (keys used as they are).  ``rules``: the model's ``CheckpointRules``.
    """
    model_keys = set(model_keys)
    layout = detect_layout(ckpt_keys, rules)
    report = LoadReport(layout)
    classifier = {p: why for r in rules for p, why in r.classifier_keys.items()}
    mapping = OrderedDict()
    for k in ckpt_keys:
        dst = k
        if target == "segmentor" and layout == "backbone":
            dst = "backbone." + k
        elif target == "backbone" and layout == "segmentor":
            if not k.startswith("backbone."):
                report.dropped.append((k, "not a backbone key"))
                continue
            dst = k[len("backbone."):]
        if target in ("segmentor", "backbone") and layout == "backbone" and dst not in model_keys:
            why = next((why for p, why in classifier.items() if k.startswith(p)), None)
            if why is not None:
                report.dropped.append((k, why))
                continue
        if dst in model_keys:
            if dst in mapping.values():
                raise CheckpointError(f"two checkpoint keys map to model key {dst!r}")
            mapping[k] = dst
        else:
            report.unexpected.append(k)
    report.missing = sorted(model_keys - set(mapping.values()))
    if layout == "backbone":
        init_only = tuple(s for r in rules for s in r.init_only_suffixes)
        if init_only:
            report.initialised = [k for k in report.missing if k.endswith(init_only)]
            report.missing = [k for k in report.missing if not k.endswith(init_only)]
    return mapping, report


# ----------------------------------------------------------------------------- model <-> arrays


def _same_shape(a, b, key):
    a, b = tuple(a), tuple(b)
    if a == b:
        return True
    # 0-d buffers: PyTorch saves (), Jittor holds them as (1,)
    return key.endswith(_SCALAR_KEYS) and int(np.prod(a)) == int(np.prod(b)) == 1


def model_state_dict(model):
    """``{key: ndarray}`` with the official shapes/dtypes (``num_batches_tracked``: 0-d int64; integer
    tables int64, as PyTorch holds every index tensor, where Jittor may hold int32)."""
    out = OrderedDict()
    for k, v in model.state_dict().items():
        a = v.numpy()
        if k.endswith(_SCALAR_KEYS):
            a = np.asarray(a.reshape(()), dtype=np.int64)
        elif np.issubdtype(a.dtype, np.integer):
            a = a.astype(np.int64)
        out[k] = a
    return out


STRICT_HINT = "pass strict=False to load the matching keys anyway"


def load_state_dict(model, state_dict, strict=True, target=None, name="checkpoint", strict_hint=STRICT_HINT,
                    absent_ok=None):
    """Load ``{key: array}`` into ``model`` through the key map; returns the LoadReport.

    ``strict``: raise ``CheckpointError`` naming missing / unexpected / wrong-shape keys.
    Nothing is written into the model when the strict check fails.  ``strict_hint``: what the
    error tells the user to do about it (each command says what is true for it; None: nothing).
    ``target``: ``'segmentor'``, ``'backbone'`` (inferred from the model's keys when None), or any other
    value for a bare module (keys used as they are).  ``absent_ok``: ``{key suffix: reason}`` of model keys
    this kind of checkpoint cannot have (they keep their values and are reported, not missing).
    """
    params = model.state_dict()
    if target is None:
        target = "segmentor" if any(k.startswith("backbone.") for k in params) else "backbone"
    rules = model_rules(model)
    state_dict, converted = convert_layouts(state_dict, rules)
    mapping, report = map_keys(list(state_dict), list(params), target, rules)
    report.renamed[:0] = converted
    if absent_ok:
        suffixes = tuple(absent_ok)
        absent = [k for k in report.missing if k.endswith(suffixes)]
        report.missing = [k for k in report.missing if not k.endswith(suffixes)]
        report.initialised += absent
        report.initialised_why = "; ".join(sorted(set(absent_ok.values())))
    for src, dst in mapping.items():
        shape = state_dict[src].shape
        if not _same_shape(shape, params[dst].shape, dst):
            report.mismatched.append((dst, shape, tuple(params[dst].shape)))
    if strict and not report.ok:
        hints = [h for h in (r.hint(report) for r in rules if r.hint is not None) if h]
        raise CheckpointError(f"{name} does not match the model:\n  " + "\n  ".join(report.problems())
                              + "".join(f"\n({h})" for h in hints)
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
    absent = JSEG_ABSENT if meta.get(FORMAT_KEY) == JSEG_JITTOR else None
    report = load_state_dict(model, state_dict, strict=strict, target=target, name=path, strict_hint=strict_hint,
                             absent_ok=absent)
    if absent:
        report.layout += f" ({JSEG_JITTOR})"
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
