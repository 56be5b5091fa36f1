"""Compare a jseg model with reference outputs dumped from the PyTorch model.

    python -m jseg.tools.parity --config CONFIG --checkpoint CKPT --reference REF.npz \
        [--atol 1e-4] [--rtol 1e-4]

REF (``numpy.savez``) must hold ``input`` (normalised images, NCHW float32) and
any of: ``stage1..stage4`` (backbone outputs), ``head_logits`` (decode head
before resize), ``logits`` / ``final_logits`` (resized to the input).  If it
holds the draws of a module's random stream under the stream's name (SegNeXt's Ham
head: ``nmf_bases`` ``(B*S, D, R)``, L2-normalised, or ``nmf_bases_raw`` before the
normalisation), they are injected (``jseg.models.random_streams``), as the official
code draws anew on every forward.  A REF with ``crop_size`` and ``stride`` is a
sliding-window reference: ``logits`` are then the averaged crop logits and each
stream holds one draw per crop.

An element passes when ``|ours - ref| <= atol + rtol * |ref|``.  One line per
array: max abs diff, max rel diff (over elements with ``|ref| > atol``), PASS/FAIL.
Exit status: 0 all pass, 1 any failure, 2 unusable input.
"""
import argparse
import sys

import numpy as np

COMPARED = ("stage1", "stage2", "stage3", "stage4", "head_logits", "logits", "final_logits")
SETTINGS = ("input", "crop_size", "stride")


def compare(name, ours, ref, atol, rtol):
    """-> (ok, line) for one array."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        return False, f"{name:<13} shape {tuple(ours.shape)} != reference {tuple(ref.shape)}  FAIL"
    diff = np.abs(ours - ref)
    finite = np.isfinite(ours).all()
    ok = bool(finite and (diff <= atol + rtol * np.abs(ref)).all())
    big = np.abs(ref) > atol
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float((diff[big] / np.abs(ref[big])).max()) if big.any() else 0.0
    note = "" if finite else "  (non-finite values)"
    return ok, (f"{name:<13} {str(tuple(ref.shape)):<20} max_abs {max_abs:9.3e}  max_rel {max_rel:9.3e}  "
                f"{'PASS' if ok else 'FAIL'}{note}")


def _load_reference(path):
    """The arrays of REF, or None after saying why it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 -- numpy/zipfile raise many kinds for a file that is not an .npz
        return f"parity: cannot read reference {path}: {type(e).__name__}: {e} (expected a numpy .npz)"


def run(config, checkpoint, reference, atol=1e-4, rtol=1e-4, strict=True, cfg_options=None, out=print):
    """Returns the exit status (see module docstring)."""
    ref = _load_reference(reference)
    if isinstance(ref, str):
        out(ref)
        return 2
    if "input" not in ref:
        out(f"parity: {reference} has no 'input' array (found: {', '.join(sorted(ref))})")
        return 2
    present = [k for k in COMPARED if k in ref]
    if not present:
        out(f"parity: {reference} holds none of {', '.join(COMPARED)}; nothing to compare")
        return 2

    import jittor as jt
    from ..checkpoint import CheckpointError, load_checkpoint
    from ..config import Config, ConfigError
    from ..models import build_segmentor
    from ..models.random_streams import random_streams, stream_names

    try:
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_options(cfg_options)
        model = build_segmentor(cfg.model)
        report, _ = load_checkpoint(model, checkpoint, strict=strict,
                                    strict_hint="pass --no-strict to load the matching keys anyway")
    except (ConfigError, CheckpointError, KeyError, TypeError, ValueError) as e:
        out(f"parity: {e}")
        return 2
    out(str(report))
    model.eval()

    slide = "crop_size" in ref and "stride" in ref
    inject, used = {}, set(COMPARED) | set(SETTINGS)
    for stream, cls in stream_names(model).items():
        used.update((stream, stream + "_raw"))
        draws = ref.get(stream)
        if draws is None and stream + "_raw" in ref:
            draws = cls.from_raw_draws(ref[stream + "_raw"])
        if draws is not None:
            inject[stream] = list(draws) if slide else [draws]
        else:
            out(f"parity: warning: REF has no {stream}; {cls.__name__} draws its own random numbers, "
                f"so the outputs after it cannot match")

    img = jt.array(ref["input"].astype(np.float32))
    with jt.no_grad(), random_streams(inject=inject):
        if slide:
            model.test_cfg.update(mode="slide", crop_size=tuple(int(v) for v in ref["crop_size"]),
                                  stride=tuple(int(v) for v in ref["stride"]))
            ours = {"logits": model.slide_inference(img)}
        else:
            ours = model.forward_features(img)
    ours["final_logits"] = ours.get("logits")

    failures = 0
    out(f"{'array':<13} {'shape':<20} comparing with atol={atol:g} rtol={rtol:g}")
    for name in present:
        if ours.get(name) is None:
            out(f"{name:<13} not produced in this mode  FAIL")
            failures += 1
            continue
        ok, line = compare(name, ours[name].numpy(), ref[name], atol, rtol)
        failures += not ok
        out(line)
    ignored = sorted(set(ref) - used)
    if ignored:
        out(f"not compared: {', '.join(ignored)}")
    out(f"parity: {len(present) - failures}/{len(present)} arrays pass"
        + ("" if not failures else f"; FAILED: {failures}"))
    return 1 if failures else 0


def _main(argv):
    from ._cli import add_debug_flag
    p = argparse.ArgumentParser(prog="python -m jseg.tools.parity", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--config", required=True, help="model config (.py)")
    p.add_argument("--checkpoint", required=True, help="weights: official .pth, converted .pkl or .npz")
    p.add_argument("--reference", required=True, help="REF.npz dumped from PyTorch")
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--rtol", type=float, default=1e-4)
    p.add_argument("--no-strict", action="store_true", help="load a checkpoint that does not match every key")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override config entries")
    add_debug_flag(p)
    a = p.parse_args(argv)
    from ..config import parse_cfg_options
    return run(a.config, a.checkpoint, a.reference, a.atol, a.rtol, strict=not a.no_strict,
               cfg_options=parse_cfg_options(a.cfg_options))


def main(argv=None):
    from ._cli import run as run_cli
    return run_cli("parity", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
