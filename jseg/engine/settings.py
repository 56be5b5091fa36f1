"""What training reads from a config, checked before anything starts.

Every key of the sections below is consumed by the runner, the optimizer or the schedule.  A key
that nothing reads (a misspelling, or an mmcv option jseg does not implement) is an error naming
the key and the closest valid one, and every value is checked for its kind and range, so a run
never starts with a setting silently ignored or fails hours later on one (``interval=0``).
Top-level names that are not sections (``crop_size``, ``norm_cfg``, ...) are config helpers and
are not checked; the datasets (train, val and test, their pipelines included) are checked against
their constructors' arguments without building them, and the model when it is built (the registry
refuses unknown arguments with the closest valid one).
"""
import numbers

from ..config import ConfigError, closest
from ..errors import UserError
from ..datasets import DATASETS
from ..datasets.transforms import TRANSFORMS
from ..evaluation.metrics import METRICS, metric_list
from .amp import parse_fp16


def _int(minimum):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            return f"expected an integer >= {minimum}"
    return check


def _number(minimum=None, positive=False):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return "expected a number"
        if positive and not v > 0:
            return "expected a number > 0"
        if minimum is not None and v < minimum:
            return f"expected a number >= {minimum}"
    return check


def _one_of(*allowed, why=""):
    def check(v):
        if not any(v == a and type(v) is type(a) for a in allowed):
            return f"expected {' or '.join(repr(a) for a in allowed)}{why}"
    return check


def _bool(v):
    if not isinstance(v, bool):
        return "expected True or False"


def _metric(v):
    try:
        metric_list(v)
    except (KeyError, TypeError):
        return f"expected any of {', '.join(METRICS)} (a name or a list)"


def _betas(v):
    if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(
            isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1 for b in v)):
        return "expected two numbers in [0, 1), e.g. (0.9, 0.999)"


def _paramwise(v):
    if not isinstance(v, dict):
        return "expected dict(custom_keys={...})"
    for k in v:
        if k != "custom_keys":
            return f"has {k!r}; only custom_keys is implemented"
    for name, mult in v.get("custom_keys", {}).items():
        if not isinstance(mult, dict) or set(mult) - {"lr_mult", "decay_mult"}:
            return f"custom_keys[{name!r}] must be a dict of lr_mult / decay_mult, got {mult!r}"
        for m in mult.values():
            if isinstance(m, bool) or not isinstance(m, numbers.Real) or m < 0:
                return f"custom_keys[{name!r}]: multipliers must be numbers >= 0, got {mult!r}"


def _log_hooks(v):
    if not isinstance(v, (list, tuple)) or not all(isinstance(h, dict) for h in v):
        return "expected a list of hook dicts"
    for h in v:
        if h.get("type") not in ("TextLoggerHook", "TensorboardLoggerHook"):
            return (f"has a {h.get('type')!r} hook; jseg writes the text log and train.log.json itself "
                    "(TextLoggerHook) and TensorBoard scalars with TensorboardLoggerHook; no other logger hooks")
        extra = set(h) - {"type", "by_epoch", "log_dir"}
        if extra or h.get("by_epoch", False):
            return f"{h['type']}: unsupported settings {sorted(extra) or ['by_epoch=True']} (type and log_dir only)"


def _check_transform(t):
    if isinstance(t, dict):  # (a pipeline may also hold callables)
        _, args = TRANSFORMS.check(t)
        for sub in args.get("transforms") or []:
            _check_transform(sub)


def _check_dataset(cfg):
    _, args = DATASETS.check(cfg)
    if isinstance(args.get("dataset"), dict):
        _check_dataset(args["dataset"])
    for t in args.get("pipeline") or []:
        _check_transform(t)


def _dataset(v):
    """The dataset, its wrapped dataset and every pipeline step: types and arguments (nothing is built)."""
    if not isinstance(v, dict) or "type" not in v:
        return "expected a dataset dict with a 'type'"
    try:
        _check_dataset(v)
    except ConfigError as e:
        return str(e)


def _optional_dataset(v):
    return None if v is None else _dataset(v)


def _none_only(why):
    def check(v):
        if v not in (None, False, {}, []):
            return why
    return check


def _fp16(v):
    try:
        parse_fp16(v)
    except UserError as e:
        return str(e)


# section -> {key: check}; a check returns None or what is wrong
SECTIONS = {
    "runner": {"type": _one_of("IterBasedRunner", why=" (jseg trains by iterations)"), "max_iters": _int(1)},
    "checkpoint_config": {"by_epoch": _one_of(False, why=" (checkpoints are counted in iterations)"),
                          "interval": _int(1)},
    "evaluation": {"interval": _int(0), "metric": _metric, "pre_eval": _bool,
                   "save_best": _one_of("mIoU", "auto", None, why=" (the best-mIoU checkpoint is always kept)")},
    "log_config": {"interval": _int(1), "hooks": _log_hooks},
    "lr_config": {"policy": _one_of("poly"), "power": _number(0), "min_lr": _number(0),
                  "by_epoch": _one_of(False), "warmup": _one_of(None, "linear"), "warmup_iters": _int(0),
                  "warmup_ratio": _number(0)},
    "optimizer": {"type": _one_of("AdamW", "SGD"), "lr": _number(positive=True), "weight_decay": _number(0),
                  "betas": _betas, "eps": _number(positive=True), "momentum": _number(0),
                  "paramwise_cfg": _paramwise},
    "optimizer_config": {"grad_clip": _none_only("gradient clipping is not implemented; remove grad_clip")},
    "data": {"batch_size": _int(1), "samples_per_gpu": _int(1), "workers_per_gpu": _int(0),
             "train": _dataset, "val": _optional_dataset, "test": _optional_dataset},
}
REQUIRED = {"runner": ("max_iters",), "data": ("train",), "optimizer": ("type", "lr"), "lr_config": ("policy",)}
# top-level runtime keys of mmseg configs: what jseg does with each
TOP_LEVEL = {
    "seed": _int(0),
    "work_dir": lambda v: None if v is None or isinstance(v, str) else "expected a path",
    "load_from": lambda v: None if v is None or isinstance(v, str) else "expected a checkpoint path or None",
    "resume_from": _none_only("jseg resumes only when asked on the command line: pass --resume CHECKPOINT"),
    "auto_resume": _none_only("jseg never resumes by itself: pass --resume CHECKPOINT"),
    "fp16": _fp16,
    "workflow": lambda v: None if v in (None, [("train", 1)], [["train", 1]]) else
    "only [('train', 1)] is implemented (evaluation runs from the evaluation section)",
}


def check_training_config(cfg):
    """Raise ``ConfigError`` listing every setting training would ignore or fail on."""
    problems = []
    for section, schema in SECTIONS.items():
        value = cfg.get(section)
        if value is None:
            if section in REQUIRED:
                problems.append(f"{section}: missing (expected a dict with {', '.join(REQUIRED.get(section, ()))})")
            continue
        if not isinstance(value, dict):
            problems.append(f"{section}: expected a dict, got {value!r}")
            continue
        for key, v in value.items():
            if key not in schema:
                near = closest(key, schema)
                problems.append(f"{section}.{key}: not a setting jseg reads"
                                + (f" (did you mean {section}.{near}?)" if near else
                                   f" (valid: {', '.join(sorted(schema))})"))
                continue
            why = schema[key](v)
            if why:
                shown = "" if isinstance(v, (dict, list)) and len(repr(v)) > 60 else f" = {v!r}"
                problems.append(f"{section}.{key}{shown}: {why}")
        for key in REQUIRED.get(section, ()):
            if key not in value:
                problems.append(f"{section}.{key}: missing")
    data = cfg.get("data")
    if isinstance(data, dict) and "batch_size" not in data and "samples_per_gpu" not in data:
        problems.append("data: give batch_size (the global batch) or samples_per_gpu (per process)")
    opt = cfg.get("optimizer")
    if isinstance(opt, dict):
        if opt.get("type") == "SGD" and "betas" in opt:
            problems.append("optimizer.betas: SGD has no betas (AdamW does)")
        if opt.get("type") == "AdamW" and "momentum" in opt:
            problems.append("optimizer.momentum: AdamW has no momentum (use betas)")
    for key, check in TOP_LEVEL.items():
        if key in cfg:
            why = check(cfg[key])
            if why:
                problems.append(f"{key} = {cfg[key]!r}: {why}")
    if problems:
        where = f" ({cfg.filename})" if getattr(cfg, "filename", None) else ""
        raise ConfigError(f"config{where} has settings training cannot use:\n  " + "\n  ".join(problems))
