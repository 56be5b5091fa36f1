"""Parameters and GFLOPs of a config's model, counted the way its paper counts.

    python -m jseg.tools.analyze CONFIG [--shape H [W]] [--rules paper|torchprofile|mmcv|nvlabs] [--json]
        [--cfg-options key=value ...]

Operations of ``encode_decode`` on a 1x3xHxW input (see ``jseg/analysis.py``).
``--rules paper`` (default) picks the paper's own convention: SegNeXt counts
MACs with torchprofile (final resize included), SegFormer uses mmcv's module
counter plus NVlabs' attention term.  Both papers print the result as
"GFLOPs".  ``--shape`` defaults to 512x512; the Cityscapes figures use
``--shape 1024 2048``.  Nothing is computed: the forward is traced lazily, so
any size is counted in about a second.  ``--json`` prints one JSON line.
"""
import argparse
import json
import os
import sys

from ..config import Config, parse_cfg_options


def analyze(config, shape=(512, 512), cfg_options=(), rules="paper"):
    from ..analysis import DESCRIPTION, count_macs, count_params, paper_ruleset
    from ..models import build_segmentor

    cfg = Config.fromfile(config)
    cfg.merge_options(parse_cfg_options(list(cfg_options)))
    model = build_segmentor(cfg.model)
    ruleset = paper_ruleset(model) if rules == "paper" else rules
    ops = count_macs(model, shape, ruleset=ruleset)
    parts = [name for name, _ in model.named_children()]
    params = {name: count_params(getattr(model, name)) for name in parts}
    params["total"] = count_params(model)
    return dict(config=config, shape=list(shape), params=params, rules=ruleset, unit=DESCRIPTION[ruleset],
                gflops={k: v / 1e9 for k, v in ops.items()})


def format_report(r):
    H, W = r["shape"]
    g = r["gflops"]
    rows = [(name, f"{r['params'][name]:,}", f"{g.get(name, 0.0):.3f}") for name in r["params"] if name != "total"]
    rows.append(("final resize", "-", f"{g['resize']:.3f}"))
    rows.append(("total", f"{r['params']['total']:,}", f"{g['total']:.3f}"))
    w0 = max(len(a) for a, _, _ in rows + [("part", "", "")])
    w1 = max(len(b) for _, b, _ in rows + [("", "params", "")])
    lines = [f"{os.path.basename(r['config'])}: input 1x3x{H}x{W}",
             f"{'part':<{w0}}  {'params':>{w1}}  {r['unit'].split()[0]:>9}"]
    lines += [f"{a:<{w0}}  {b:>{w1}}  {c:>9}" for a, b, c in rows]
    lines.append(f"{r['params']['total'] / 1e6:.2f} M parameters, {g['total']:.2f} {r['unit']}")
    return "\n".join(lines)


def _main(argv):
    p = argparse.ArgumentParser(prog="python -m jseg.tools.analyze", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--shape", type=int, nargs="+", default=[512, 512], metavar="H [W]",
                   help="input height and width (one value: square); default 512 512")
    p.add_argument("--rules", choices=["paper", "torchprofile", "mmcv", "nvlabs"], default="paper",
                   help="counting convention (default: the one the model's paper used)")
    p.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors (or JSEG_DEBUG=1)")
    a = p.parse_args(argv)
    if len(a.shape) not in (1, 2) or min(a.shape) < 32:
        p.error(f"--shape takes H or H W, each at least 32; got {a.shape}")
    shape = (a.shape[0], a.shape[-1])
    if not os.path.isfile(a.config):
        p.error(f"config not found: {a.config}")
    r = analyze(a.config, shape, a.cfg_options, a.rules)
    print(json.dumps(r) if a.json else format_report(r))
    return 0


def main(argv=None):
    from ._cli import run
    return run("analyze", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
