"""Parameters and GMACs of a config's model.

    python -m jseg.tools.analyze CONFIG [--shape H [W]] [--json] [--cfg-options key=value ...]

GMACs are counted the way the SegNeXt paper counts its "GFLOPs" (torchprofile
MACs of ``encode_decode`` on a 1x3xHxW input, final resize included; see
``jseg/analysis.py``).  ``--shape`` defaults to 512x512; the paper's Cityscapes
figures use ``--shape 1024 2048``.  Nothing is computed: the forward is traced
lazily, so any size is counted in about a second.  ``--json`` prints one JSON line.
"""
import argparse
import json
import os
import sys

from ..config import Config, parse_cfg_options


def analyze(config, shape=(512, 512), cfg_options=()):
    from ..analysis import count_macs, count_params
    from ..models import build_segmentor

    cfg = Config.fromfile(config)
    cfg.merge_options(parse_cfg_options(list(cfg_options)))
    model = build_segmentor(cfg.model)
    macs = count_macs(model, shape)
    parts = [name for name, _ in model.named_children()]
    params = {name: count_params(getattr(model, name)) for name in parts}
    params["total"] = count_params(model)
    return dict(config=config, shape=list(shape), params=params,
                gmacs={k: v / 1e9 for k, v in macs.items()})


def format_report(r):
    H, W = r["shape"]
    rows = [(name, f"{r['params'][name]:,}", f"{r['gmacs'].get(name, 0.0):.3f}")
            for name in r["params"] if name != "total"]
    rows.append(("final resize", "-", f"{r['gmacs']['resize']:.3f}"))
    rows.append(("total", f"{r['params']['total']:,}", f"{r['gmacs']['total']:.3f}"))
    w0 = max(len(a) for a, _, _ in rows + [("part", "", "")])
    w1 = max(len(b) for _, b, _ in rows + [("", "params", "")])
    lines = [f"{os.path.basename(r['config'])}: input 1x3x{H}x{W}",
             f"{'part':<{w0}}  {'params':>{w1}}  {'GMACs':>9}"]
    lines += [f"{a:<{w0}}  {b:>{w1}}  {c:>9}" for a, b, c in rows]
    lines.append(f"{r['params']['total'] / 1e6:.1f} M parameters, {r['gmacs']['total']:.1f} GMACs "
                 f"(torchprofile-style, the paper's 'GFLOPs')")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jseg.tools.analyze", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--shape", type=int, nargs="+", default=[512, 512], metavar="H [W]",
                   help="input height and width (one value: square); default 512 512")
    p.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE")
    a = p.parse_args(argv)
    if len(a.shape) not in (1, 2) or min(a.shape) < 32:
        p.error(f"--shape takes H or H W, each at least 32; got {a.shape}")
    shape = (a.shape[0], a.shape[-1])
    if not os.path.isfile(a.config):
        p.error(f"config not found: {a.config}")
    r = analyze(a.config, shape, a.cfg_options)
    print(json.dumps(r) if a.json else format_report(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
