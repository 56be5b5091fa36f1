"""Convert a PyTorch checkpoint into a jseg (Jittor) checkpoint.

    python -m jseg.tools.convert_checkpoint SRC.pth DST.pkl [--config CONFIG] [--no-strict]

SRC may be an official SegNeXt or NVlabs SegFormer segmentor checkpoint, an
mmseg-1.x one (MSCAN, or a MiT backbone), a JSeg (Jittor port) training ``.pkl``, an ImageNet MSCAN or ``mit_b*.pth``
backbone checkpoint (its classifier ``head.*`` is dropped) or a plain state dict.  Keys are written with the official names, so DST loads into
jseg (and gives the same outputs as SRC).  The weights are checked against a
model built from ``--config`` or, if absent, from the config text that official
checkpoints carry in ``meta['config']``; without either the keys are converted
unchecked (a warning says so).  The optimizer state is not carried over.
DST is written atomically (never a half-written file) and an existing DST is not
replaced unless ``--force``.  Exit status: 0 written; 2 unusable input (one line
says which file or key); ``--debug`` adds tracebacks.
"""
import argparse
import os
import sys
import tempfile

from ..checkpoint import (FORMAT_KEY, JSEG_ABSENT, JSEG_JITTOR, detect_layout, load_state_dict, model_state_dict,
                          read_checkpoint, registered_rules, save_checkpoint, to_official_keys)
from ..config import Config, ConfigError


def _config_from_meta(text):
    """Load the config text embedded by mmcv in ``meta['config']``."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(text)
    try:
        return Config.fromfile(f.name)
    finally:
        os.unlink(f.name)


def convert(src, dst, config=None, strict=True, out=print):
    from .. import __version__
    from ..models import build_segmentor

    state_dict, meta = read_checkpoint(src)
    official, renamed = to_official_keys(state_dict)   # every layout a registered model knows, by its names
    layout = detect_layout(official, registered_rules())
    cfg, cfg_source = None, None
    if config:
        cfg, cfg_source = Config.fromfile(config), config
    elif isinstance(meta.get("config"), str) and "model" in meta["config"]:
        try:
            cfg, cfg_source = _config_from_meta(meta["config"]), "meta['config'] of the checkpoint"
        except ConfigError as e:
            out(f"warning: could not read the config embedded in {src}: {e}")
    if cfg is not None:
        model = build_segmentor(cfg.model)
        target = model.backbone if layout == "backbone" else model
        absent = JSEG_ABSENT if meta.get(FORMAT_KEY) == JSEG_JITTOR else None
        report = load_state_dict(target, state_dict, strict=strict, name=src, absent_ok=absent,
                                 strict_hint="pass --no-strict to convert the matching keys anyway")
        out(f"checked against the model of {cfg_source}\n{report}")
        converted = model_state_dict(target)
        if not strict:  # keep only what was actually loaded: never invent weights for missing keys
            missing = set(report.missing) | {k for k, _, _ in report.mismatched}
            converted = {k: v for k, v in converted.items() if k not in missing}
    else:
        converted = official
        out(f"warning: no config given and none embedded in {src}: keys converted without checking them "
            f"against a model (pass --config to check). layout: {layout}; renamed {len(renamed)} keys")
    new_meta = {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool, list, tuple, dict))}
    new_meta.update(jseg_version=__version__, converted_from=os.path.abspath(src), layout=layout)
    if cfg is not None:
        new_meta["config"] = cfg.pretty_text()
    save_checkpoint(dst, state_dict=converted, meta=new_meta)
    out(f"wrote {dst} ({len(converted)} tensors)")
    return 0


def _main(argv):
    from ._cli import add_debug_flag
    from ..errors import UsageError
    p = argparse.ArgumentParser(prog="python -m jseg.tools.convert_checkpoint",
                                description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="PyTorch checkpoint (.pth) or state dict (.pkl/.npz)")
    p.add_argument("dst", help="output jseg checkpoint (.pkl)")
    p.add_argument("--config", help="model config to check the weights against")
    p.add_argument("--no-strict", action="store_true", help="convert even if keys are missing/unexpected")
    p.add_argument("--force", action="store_true", help="replace DST if it exists")
    add_debug_flag(p)
    a = p.parse_args(argv)
    if os.path.lexists(a.dst) and not a.force:
        raise UsageError(f"{a.dst} already exists; pass --force to replace it or choose another DST")
    return convert(a.src, a.dst, a.config, strict=not a.no_strict)


def main(argv=None):
    from ._cli import run
    return run("convert_checkpoint", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
