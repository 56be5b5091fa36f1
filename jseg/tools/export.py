"""Export a model's weights out of jseg: a PyTorch checkpoint in the official layout, written without PyTorch.

    python -m jseg.tools.export CONFIG CHECKPOINT --format pth [--layout official|mmseg1] [--out FILE.pth]
        [--force] [--no-strict] [--debug]

CHECKPOINT: anything jseg loads (a jseg ``.pkl`` from training, an official or mmseg-1.x ``.pth``, an
``.npz``).  ``--format pth`` writes ``{'meta': {...}, 'state_dict': OrderedDict}`` in ``torch.save``'s
zip format (``jseg/export/torch_zip.py``) with the official key names, order and dtypes (0-d int64
``num_batches_tracked``, int64 index tables), so the official code, mmseg 0.x and tools built on them
(mmdeploy) load it with ``torch.load``; ``meta`` carries ``CLASSES``, ``PALETTE`` and the config text.
``--layout mmseg1`` writes mmseg 1.x's key names instead (MSCAN's inlined ``mlp.dwconv``, MiT's
``layers.i.j`` with joined q/kv projections); a model part mmseg 1.x lays out differently (SegFormer's
head, CGRSeg) is refused with its name.
Default FILE: CHECKPOINT's name with ``_official.pth``.  The file is written atomically and an existing
one is kept unless ``--force``.  ONNX export is not available yet.

Exit status: 0 written; 2 unusable input (one line says which file or key).
"""
import argparse
import os
import sys
import time
from collections import OrderedDict

from ..config import Config
from ..errors import UsageError


def export_pth(config, checkpoint, out, strict=True, layout="official"):
    from .. import __version__
    from ..checkpoint import load_checkpoint, model_state_dict, to_mmseg1_layout
    from ..datasets import DATASETS
    from ..export import torch_zip
    from ..models import build_segmentor

    cfg = Config.fromfile(config)
    model = build_segmentor(cfg.model)
    report, _ = load_checkpoint(model, checkpoint, strict=strict,
                                strict_hint="pass --no-strict to export the matching keys anyway")
    meta = {"jseg_version": __version__, "time": time.strftime("%Y-%m-%d %H:%M:%S"), "config": cfg.pretty_text(),
            "source_checkpoint": os.path.abspath(checkpoint)}
    test = (cfg.get("data") or {}).get("test") or (cfg.get("data") or {}).get("val")
    if test is not None and test.get("type") in DATASETS.names():
        dataset_cls = DATASETS.get(test["type"])
        for key in ("CLASSES", "PALETTE"):
            if getattr(dataset_cls, key, None) is not None:
                meta[key] = [list(x) if isinstance(x, (list, tuple)) else x for x in getattr(dataset_cls, key)]
    state = OrderedDict(model_state_dict(model))
    meta["layout"] = layout
    if layout == "mmseg1":
        state, _ = to_mmseg1_layout(model, state)
    torch_zip.save({"meta": meta, "state_dict": state}, out)
    return report, len(state)


def _main(argv):
    from ._cli import add_debug_flag
    p = argparse.ArgumentParser(prog="python -m jseg.tools.export", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("checkpoint")
    p.add_argument("--format", required=True, choices=["pth", "onnx"])
    p.add_argument("--layout", choices=["official", "mmseg1"], default="official")
    p.add_argument("--out")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--no-strict", action="store_true", help="export although the checkpoint misses model keys")
    add_debug_flag(p)
    a = p.parse_args(argv)
    if a.format == "onnx":
        raise UsageError("--format onnx: ONNX export is not available yet; --format pth writes a PyTorch "
                         "checkpoint (official layout) that PyTorch-based exporters such as mmdeploy take")
    for path, what in ((a.config, "config"), (a.checkpoint, "checkpoint")):
        if not os.path.isfile(path):
            raise UsageError(f"{what} not found: {path}")
    out = a.out or os.path.splitext(a.checkpoint)[0] + "_official.pth"
    if os.path.abspath(out) == os.path.abspath(a.checkpoint):
        raise UsageError(f"--out {out} is the checkpoint being read; choose another file")
    if os.path.exists(out) and not a.force:
        raise UsageError(f"{out} exists; pass --force to replace it or --out to write elsewhere")
    report, n = export_pth(a.config, a.checkpoint, out, strict=not a.no_strict, layout=a.layout)
    print(f"{report}\nwrote {out}: {n} tensors, {a.layout} key names (torch.load reads it)")
    return 0


def main(argv=None):
    from ._cli import run
    return run("export", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
