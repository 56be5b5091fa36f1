"""Benchmarks.

    python -m jseg.tools.benchmark loader [--config configs/_base_/datasets/ade20k.py] [--data-root DIR]
        [--toy-size 512] [--workers 0 2] [--samples-per-gpu 4] [--batches 25]

``loader``: images/s of a config's training data (``data.train``) through
jseg's loader, for each worker count.  Without ``--data-root`` the config's
pipeline runs on a generated toy folder in the ADE20K layout (``--toy-size``
square images, default 512, about ADE20K's size), so no download is needed.
"""
import argparse
import os
import sys
import tempfile
import time


def bench_loader(config, data_root=None, toy_size=512, workers=(0, 2), samples_per_gpu=4, batches=25, out=print):
    from ..config import Config
    from ..datasets import build_dataset, make_toy_dataset

    cfg = Config.fromfile(config)
    train = cfg.data.train
    inner = train.dataset if train.get("type") == "RepeatDataset" else train
    if data_root is None:
        data_root = os.path.join(tempfile.gettempdir(), f"jseg_toy_bench_{toy_size}")
        make_toy_dataset(data_root, n_train=64, n_val=1, size=toy_size, seed=0)
        inner.update(data_root=data_root, img_dir="images/training", ann_dir="annotations/training")
        out(f"data: toy folder {data_root} (64 images {toy_size}x{toy_size}), pipeline of {config}")
    else:
        inner["data_root"] = data_root
    results = {}
    for w in workers:
        ds = build_dataset(train).set_loader(samples_per_gpu=samples_per_gpu, workers_per_gpu=w, shuffle=True)
        it = iter(ds)
        next(it)  # worker start-up and first batch are not counted
        n = 0
        t0 = time.perf_counter()
        for _ in range(batches):
            try:
                b = next(it)
            except StopIteration:
                it = iter(ds)
                b = next(it)
            b["img"].sync()
            n += b["img"].shape[0]
        dt = time.perf_counter() - t0
        results[w] = n / dt
        out(f"workers={w}: {results[w]:.1f} images/s ({n} images in {dt:.1f} s, batch {ds.batch_size})")
        ds.close()
    return results


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jseg.tools.benchmark", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    lp = sub.add_parser("loader", help="data loading throughput")
    lp.add_argument("--config", default="configs/_base_/datasets/ade20k.py")
    lp.add_argument("--data-root")
    lp.add_argument("--toy-size", type=int, default=512)
    lp.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    lp.add_argument("--samples-per-gpu", type=int, default=4)
    lp.add_argument("--batches", type=int, default=25)
    a = p.parse_args(argv)
    bench_loader(a.config, a.data_root, a.toy_size, a.workers, a.samples_per_gpu, a.batches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
