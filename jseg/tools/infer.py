"""Segment your own images with a trained (or released PyTorch) checkpoint.

    python -m jseg.tools.infer CONFIG CHECKPOINT INPUT [--out DIR] [--opacity 0.5] [--aug-test] [--seed 0]
        [--force] [--no-strict] [--device auto|cpu|cuda] [--debug]

INPUT: an image, a folder (searched recursively) or a glob pattern (quote it).
For each image ``REL`` (its path relative to the folder, extension included, e.g.
``sub/a.jpg``) it writes ``DIR/REL.png`` (a palette PNG: pixel values are the class ids,
shown in the dataset's colours) and ``DIR/REL.overlay.png`` (the image with the colours
blended in at ``--opacity``).  Keeping the extension means two inputs never share an
output (``a.jpg`` and ``a.png`` give ``a.jpg.png`` and ``a.png.png``).

Existing outputs are not overwritten unless ``--force``.  Images that cannot be read are
reported and skipped; the run finishes the rest, and its exit status is then 2.
``--seed`` fixes the Ham head's random bases: an image gets the same labels whatever
else is in the folder (see ``jseg.apis.inference_model``).
"""
import argparse
import glob
import os
import sys

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
LABEL_SUFFIX, OVERLAY_SUFFIX = ".png", ".overlay.png"


def _inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def find_images(spec):
    """``(image paths, root)``: the root is what output names are relative to."""
    if os.path.isdir(spec):
        out = []
        for d, _, files in os.walk(spec):
            out.extend(os.path.join(d, f) for f in files if f.lower().endswith(IMAGE_EXTS))
        return sorted(out), spec
    if os.path.isfile(spec):
        return [spec], os.path.dirname(spec)
    matches = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
    if len(matches) > 1:
        return matches, os.path.commonpath([os.path.dirname(m) for m in matches])
    return matches, os.path.dirname(matches[0]) if matches else ""


def output_names(images, root):
    """``{image: relative output stem}``; refuses (UsageError) if two images would share an output."""
    from ..errors import UsageError
    names = {}
    for path in images:
        rel = os.path.relpath(path, root) if root else os.path.basename(path)
        names[path] = os.path.normpath(rel)
    seen = {}
    for path, rel in names.items():
        if rel in seen:
            raise UsageError(f"{seen[rel]} and {path} would both be written as {rel}{LABEL_SUFFIX}")
        seen[rel] = path
    return names


def _main(argv):
    from ._cli import add_debug_flag
    p = argparse.ArgumentParser(prog="python -m jseg.tools.infer", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("checkpoint", help="jseg .pkl or PyTorch .pth")
    p.add_argument("input", help="image, folder or glob")
    p.add_argument("--out", default="infer_out", help="output folder (default: infer_out)")
    p.add_argument("--opacity", type=float, default=0.5, help="colour weight in the overlay (0..1)")
    p.add_argument("--aug-test", action="store_true", help="multi-scale (0.5-1.75) + flip")
    p.add_argument("--seed", type=int, default=0, help="seed of the Ham head's random bases")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--force", action="store_true", help="overwrite outputs that already exist in --out")
    p.add_argument("--no-strict", action="store_true", help="load a checkpoint that does not match every key")
    add_debug_flag(p)
    a = p.parse_args(argv)
    if not 0 <= a.opacity <= 1:
        p.error("--opacity must be between 0 and 1")

    from tqdm import tqdm as progress  # a dependency of Jittor

    from ..apis import inference_model, init_model
    from ..datasets.transforms import DataError
    from ..datasets.transforms.loading import read_image
    from ..errors import UsageError
    from ..visualization import overlay, save_image, save_palette_png

    images, root = find_images(a.input)
    if os.path.isdir(a.input) and _inside(a.out, a.input):
        mine = [i for i in images if _inside(i, a.out)]
        if mine:
            images = [i for i in images if not _inside(i, a.out)]
            print(f"infer: not reading the {len(mine)} image(s) under the output folder {a.out}")
    if not images:
        raise UsageError(f"no images ({', '.join(IMAGE_EXTS)}) found for {a.input!r}")
    names = output_names(images, root)
    existing = [os.path.join(a.out, rel + suf) for rel in names.values() for suf in (LABEL_SUFFIX, OVERLAY_SUFFIX)
                if os.path.lexists(os.path.join(a.out, rel + suf))]
    if existing and not a.force:
        raise UsageError(f"{len(existing)} output file(s) already exist in {a.out}, e.g. {existing[0]}; "
                         "pass --force to overwrite them or choose another --out")
    try:
        os.makedirs(a.out, exist_ok=True)
        probe = os.path.join(a.out, f".jseg-write-test{os.getpid()}")
        open(probe, "w").close()
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"cannot write to --out {a.out}: {e.strerror or e}") from e

    model = init_model(a.config, a.checkpoint, device=a.device, strict=not a.no_strict,
                       strict_hint="pass --no-strict to load the matching keys anyway")
    print(f"{model.load_report}\n{len(images)} image(s) -> {a.out}")
    written, failed = 0, []
    for path in progress(images, unit="img", disable=len(images) < 2):
        try:
            img = read_image(path)
            label = inference_model(model, img, seed=a.seed, aug_test=a.aug_test)
        except DataError as e:
            failed.append((path, str(e)))
            continue
        out = os.path.join(a.out, names[path])
        save_palette_png(out + LABEL_SUFFIX, label, model.PALETTE)
        save_image(out + OVERLAY_SUFFIX, overlay(img, label, model.PALETTE, a.opacity))
        written += 1
    print(f"infer: wrote {written} label map(s) and {written} overlay(s) to {a.out}"
          + (f"; skipped {len(failed)} unreadable image(s):" if failed else ""))
    for path, why in failed:
        print(f"  {path}: {why}")
    return 2 if failed else 0


def main(argv=None):
    from ._cli import run
    return run("infer", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
