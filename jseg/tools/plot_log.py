"""Draw a training run's curves (loss, learning rate, evaluation metrics) from ``train.log.json`` to a PNG.

    python -m jseg.tools.plot_log WORK_DIR [--out FILE.png] [--keys loss lr mIoU ...] [--force] [--debug]

WORK_DIR: a training work dir (or the path of its ``train.log.json``).  One panel per key, against
the iteration: training keys (``loss``, ``decode.loss_ce``, ``decode.acc_seg``, ``lr``, ``time``,
``loss_scale``) from the training lines, evaluation keys (``mIoU``, ``mAcc``, ``aAcc``, ``mDice``,
``mFscore`` ...) from the evaluation lines.  Default keys: ``loss``, ``lr`` and ``mIoU`` (those the log
has).  Default output: ``WORK_DIR/curves.png``, written atomically; an existing file is kept unless
``--force``.  Drawn with Pillow: no plotting library needed.  Exit status 2 for a missing or empty log, or a key the log does not have.
"""
import argparse
import json
import math
import os
import sys

from ..errors import UsageError
from ..fileio import atomic_path

DEFAULT_KEYS = ("loss", "lr", "mIoU")
PANEL_W, PANEL_H, MARGIN_L, MARGIN_B, MARGIN_T = 640, 260, 78, 40, 30
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def read_log(path):
    """``(train_rows, val_rows)`` from a ``train.log.json`` (one JSON dict per line)."""
    if os.path.isdir(path):
        path = os.path.join(path, "train.log.json")
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no training log here (expected WORK_DIR/train.log.json, written by training)")
    train, val = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise UsageError(f"{path}, line {n}: not JSON ({line[:60]!r}); expected one dict per line") from None
            (val if row.get("mode") == "val" else train).append(row)
    if not train and not val:
        raise UsageError(f"{path}: the log is empty (no iteration logged yet)")
    return train, val


def series(train, val, key):
    rows = val if any(key in r for r in val) and not any(key in r for r in train) else train
    pts = [(r["iter"], float(r[key])) for r in rows if key in r and "iter" in r]
    return [(x, y) for x, y in pts if math.isfinite(y)]


def _nice_ticks(lo, hi, n=5):
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks = [math.floor(lo / step) * step]
    while ticks[-1] < hi - step * 1e-9:      # the last tick at or above the largest value
        ticks.append(ticks[0] + len(ticks) * step)
    return ticks


def _fmt(v):
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.1e}"
    return f"{v:.4g}"


def draw(panels, title):
    """``panels``: [(key, [(x, y), ...])] -> a PIL image, one panel per key stacked vertically."""
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default()
    W = PANEL_W
    H = len(panels) * PANEL_H + 24
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    d.text((8, 6), title, fill="black", font=font)
    x_max = max((p[-1][0] for _, p in panels if p), default=1)
    for i, (key, pts) in enumerate(panels):
        top = 24 + i * PANEL_H
        x0, x1 = MARGIN_L, W - 16
        y0, y1 = top + MARGIN_T, top + PANEL_H - MARGIN_B
        d.rectangle([x0, y0, x1, y1], outline=(120, 120, 120))
        d.text((x0, top + 10), key, fill="black", font=font)
        ys = [y for _, y in pts]
        lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
        yt = _nice_ticks(lo, hi)
        lo, hi = yt[0], yt[-1]
        xt = _nice_ticks(0, x_max)

        def px(x, y):
            return (x0 + (x1 - x0) * x / (xt[-1] or 1), y1 - (y1 - y0) * (y - lo) / ((hi - lo) or 1))
        for t in yt:
            _, yy = px(0, t)
            d.line([x0, yy, x1, yy], fill=(230, 230, 230))
            d.text((4, yy - 6), _fmt(t), fill=(60, 60, 60), font=font)
        for t in xt:
            xx, _ = px(t, lo)
            d.line([xx, y1, xx, y1 + 4], fill=(120, 120, 120))
            d.text((xx - 12, y1 + 8), _fmt(t), fill=(60, 60, 60), font=font)
        d.text((x1 - 50, y1 + 22), "iteration", fill=(60, 60, 60), font=font)
        colour = COLOURS[i % len(COLOURS)]
        xy = [px(x, y) for x, y in pts]
        if len(xy) > 1:
            d.line(xy, fill=colour, width=2)
        for x, y in xy if len(xy) <= 40 else xy[-1:]:
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        if pts:
            d.text((x1 - 150, top + 10), f"last {_fmt(pts[-1][1])} at {pts[-1][0]}", fill=colour, font=font)
    return img


def plot(work_dir, out=None, keys=None, force=False):
    train, val = read_log(work_dir)
    have = set().union(*(r.keys() for r in train + val)) - {"iter", "mode"}
    keys = list(keys) if keys else [k for k in DEFAULT_KEYS if k in have]
    missing = [k for k in keys if k not in have]
    if missing or not keys:
        raise UsageError(f"{work_dir}: the log has no {', '.join(missing) or 'loss, lr or mIoU'}; "
                         f"it has: {', '.join(sorted(have))}")
    panels = [(k, series(train, val, k)) for k in keys]
    base = work_dir if os.path.isdir(work_dir) else os.path.dirname(os.path.abspath(work_dir))
    out = out or os.path.join(base, "curves.png")
    if os.path.exists(out) and not force:
        raise UsageError(f"{out} exists; pass --force to replace it or --out to write elsewhere")
    img = draw(panels, f"{os.path.basename(os.path.abspath(base))}: {', '.join(keys)}")
    with atomic_path(out, ".png") as tmp:
        img.save(tmp)
    return out, {k: len(p) for k, p in panels}


def _main(argv):
    from ._cli import add_debug_flag
    p = argparse.ArgumentParser(prog="python -m jseg.tools.plot_log", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("work_dir")
    p.add_argument("--out")
    p.add_argument("--keys", nargs="+")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    add_debug_flag(p)
    a = p.parse_args(argv)
    out, counts = plot(a.work_dir, a.out, a.keys, a.force)
    print(f"wrote {out} ({', '.join(f'{k}: {n} points' for k, n in counts.items())})")
    return 0


def main(argv=None):
    from ._cli import run
    return run("plot_log", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
