"""Segment your own images with a trained (or released PyTorch) checkpoint.

    python -m jseg.tools.infer CONFIG CHECKPOINT INPUT [--out DIR] [--opacity 0.5] [--aug-test] [--seed 0]

INPUT: an image, a folder (searched recursively) or a glob pattern (quote it).
For each image NAME it writes ``DIR/NAME.png`` (a palette PNG: pixel values are the
class ids, shown in the dataset's colours) and ``DIR/NAME_overlay.png`` (the image
with the colours blended in at ``--opacity``).  Unreadable images are reported and
skipped; the run always finishes the folder and ends with a summary.
"""
import argparse
import glob
import os
import sys

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def find_images(spec):
    if os.path.isdir(spec):
        out = []
        for d, _, files in os.walk(spec):
            out.extend(os.path.join(d, f) for f in files if f.lower().endswith(IMAGE_EXTS))
        return sorted(out), spec
    if os.path.isfile(spec):
        return [spec], os.path.dirname(spec)
    matches = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
    return matches, os.path.commonpath(matches) if len(matches) > 1 else os.path.dirname(matches[0]) if matches \
        else ""


def main(argv=None):
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
    a = p.parse_args(argv)
    if not 0 <= a.opacity <= 1:
        p.error("--opacity must be between 0 and 1")

    from tqdm import tqdm as progress  # a dependency of Jittor

    from ..apis import inference_model, init_model
    from ..checkpoint import CheckpointError
    from ..datasets.transforms import DataError
    from ..datasets.transforms.loading import read_image
    from ..visualization import overlay, save_image, save_palette_png

    images, root = find_images(a.input)
    if not images:
        print(f"infer: no images found for {a.input!r}", file=sys.stderr)
        return 1
    try:
        model = init_model(a.config, a.checkpoint, device=a.device)
    except (CheckpointError, OSError) as e:
        print(f"infer: {e}", file=sys.stderr)
        return 1
    print(f"{model.load_report}\n{len(images)} image(s) -> {a.out}")
    written, failed = 0, []
    for path in progress(images, unit="img", disable=len(images) < 2):
        try:
            img = read_image(path)
            label = inference_model(model, img, seed=a.seed, aug_test=a.aug_test)
        except DataError as e:
            failed.append((path, str(e)))
            continue
        rel = os.path.splitext(os.path.relpath(path, root) if root else os.path.basename(path))[0]
        save_palette_png(os.path.join(a.out, rel + ".png"), label, model.PALETTE)
        save_image(os.path.join(a.out, rel + "_overlay.png"), overlay(img, label, model.PALETTE, a.opacity))
        written += 1
    print(f"infer: wrote {written} label map(s) and overlay(s) to {a.out}"
          + (f"; skipped {len(failed)} unreadable image(s):" if failed else ""))
    for path, why in failed:
        print(f"  {path}: {why}")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
