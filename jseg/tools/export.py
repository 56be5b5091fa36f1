"""Export a model out of jseg: ONNX for deployment, or a PyTorch checkpoint in the official layout.

    python -m jseg.tools.export CONFIG CHECKPOINT --format onnx|pth [--out FILE] [--force] [--no-strict]
        onnx: [--shape H W] [--batch N] [--opset 17] [--dynamic] [--bases-seed S]
        pth:  [--layout official|mmseg1]

CHECKPOINT: anything jseg loads (a jseg ``.pkl`` from training, JSeg's ``.pkl``, an official or
mmseg-1.x ``.pth``, an ``.npz``).

``--format onnx`` (needs the ``onnx`` package: ``pip install -e '.[export]'`` in the checkout) writes a graph made
from the model's own modules, without PyTorch: input ``input`` (N, 3, H, W) float32 (normalised as the
config's test pipeline does), output ``logits`` (N, C, H, W), the logits at the input size before
softmax.  SegNeXt's Ham head draws random bases on every forward: they are a second input
``nmf_bases`` (N*S, D, R) by default (draw them as ``NMF2D.from_raw_draws(U[0,1))``), or constants
with ``--bases-seed S`` (one draw of ``np.random.default_rng(S)``, the same for every image).
``--dynamic`` makes N, H and W symbolic (SegNeXt, SegFormer; CGRSeg's attention biases are resized
to the input size, so it stays at ``--shape`` and says so).  Default shape 512x512, batch 1, opset 17
(13-17 are written).  ``onnx.checker`` checks the file before it is written.

``--format pth`` writes ``{'meta': {...}, 'state_dict': OrderedDict}`` in ``torch.save``'s zip
format (``jseg/export/torch_zip.py``) with the official key names, order and dtypes (0-d int64
``num_batches_tracked``, int64 index tables), so the official code, mmseg 0.x and tools built on them
(mmdeploy) load it with ``torch.load``; ``meta`` carries ``CLASSES``, ``PALETTE`` and the config text.
``--layout mmseg1`` writes mmseg 1.x's key names instead (MSCAN's inlined ``mlp.dwconv``, MiT's
``layers.i.j`` with joined q/kv projections); a model part mmseg 1.x lays out differently (SegFormer's
head, CGRSeg) is refused with its name.

Default FILE: CHECKPOINT's name with ``.onnx`` / ``_official.pth``.  The file is written atomically
and an existing one is kept unless ``--force``.

Exit status: 0 written; 2 unusable input (one line says which file, key or layer).
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


def export_onnx(config, checkpoint, out, shape=(512, 512), batch=1, opset=17, dynamic=False, bases_seed=None,
                strict=True):
    """Write ``out``; returns ``(load report, notes, number of nodes)``."""
    from ..checkpoint import load_checkpoint
    from ..export.onnx_export import build_graph, check_model, save_model
    from ..models import build_segmentor

    cfg = Config.fromfile(config)
    model = build_segmentor(cfg.model)
    report, _ = load_checkpoint(model, checkpoint, strict=strict,
                                strict_hint="pass --no-strict to export the matching keys anyway")
    g, notes = build_graph(model, shape, batch, opset, dynamic, bases_seed)
    proto = g.to_model()
    check_model(proto)
    save_model(proto, out)
    return report, notes, len(proto.graph.node)


def _main(argv):
    from ._cli import add_debug_flag
    p = argparse.ArgumentParser(prog="python -m jseg.tools.export", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("checkpoint")
    p.add_argument("--format", required=True, choices=["pth", "onnx"])
    p.add_argument("--layout", choices=["official", "mmseg1"], default="official", help="pth: key names")
    p.add_argument("--shape", nargs=2, type=int, default=[512, 512], metavar=("H", "W"), help="onnx: input size")
    p.add_argument("--batch", type=int, default=1, help="onnx: batch size (fixed shapes)")
    p.add_argument("--opset", type=int, default=17, help="onnx: opset version (13-17)")
    p.add_argument("--dynamic", action="store_true", help="onnx: symbolic N, H, W where the model allows it")
    p.add_argument("--bases-seed", type=int, default=None, metavar="S",
                   help="onnx: the Ham head's random bases as constants drawn from this seed (default: an input)")
    p.add_argument("--out")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--no-strict", action="store_true", help="export although the checkpoint misses model keys")
    add_debug_flag(p)
    a = p.parse_args(argv)
    for path, what in ((a.config, "config"), (a.checkpoint, "checkpoint")):
        if not os.path.isfile(path):
            raise UsageError(f"{what} not found: {path}")
    suffix = ".onnx" if a.format == "onnx" else "_official.pth"
    out = a.out or os.path.splitext(a.checkpoint)[0] + suffix
    if os.path.abspath(out) == os.path.abspath(a.checkpoint):
        raise UsageError(f"--out {out} is the checkpoint being read; choose another file")
    if os.path.exists(out) and not a.force:
        raise UsageError(f"{out} exists; pass --force to replace it or --out to write elsewhere")
    if a.format == "onnx":
        if a.layout != "official":
            raise UsageError("--layout is for --format pth")
        try:
            import onnx  # noqa: F401  (an optional extra: checked before the model is built)
        except ImportError:
            raise UsageError("--format onnx needs the onnx package: pip install 'onnx<1.18' (or pip install "
                             "-e '.[export]' in the jseg checkout)") from None
        if min(a.shape) < 1 or a.batch < 1:
            raise UsageError(f"--shape {a.shape[0]} {a.shape[1]} --batch {a.batch}: sizes must be positive")
        report, notes, n = export_onnx(a.config, a.checkpoint, out, tuple(a.shape), a.batch, a.opset, a.dynamic,
                                       a.bases_seed, strict=not a.no_strict)
        for note in notes:
            print(f"note: {note}")
        print(f"{report}\nwrote {out}: {n} nodes, opset {a.opset}, input 'input', output 'logits'")
        return 0
    report, n = export_pth(a.config, a.checkpoint, out, strict=not a.no_strict, layout=a.layout)
    print(f"{report}\nwrote {out}: {n} tensors, {a.layout} key names (torch.load reads it)")
    return 0


def main(argv=None):
    from ._cli import run
    return run("export", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
