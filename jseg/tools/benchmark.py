"""Benchmarks: model speed and memory, data loading.

    python -m jseg.tools.benchmark CONFIG [--shape H [W]] [--batch N] [--train] [--iters N] [--warmup N]
        [--device auto|cpu|cuda] [--fp16 float16|bfloat16] [--profile] [--cfg-options key=value ...]
    python -m jseg.tools.benchmark loader [--config configs/_base_/datasets/ade20k.py] [--data-root DIR]
        [--toy-size 512] [--workers 0 2] [--samples-per-gpu 4] [--batches 25]

CONFIG: times the config's model on a random ``N x 3 x H x W`` input (default
1x3x512x512) with random weights (speed does not depend on their values).
Eval mode times ``encode_decode`` (backbone, head with its NMF steps and the
final resize: the official ``forward_dummy``), under no_grad; ``--train`` times
a whole training step (forward, loss, backward, the config's optimizer update)
on random labels, data loading excluded.  Each timed iteration ends with a
device sync.  ``--warmup`` iterations (default 2; Jittor compiles its kernels
in the first one) are not counted; then ``--iters`` (default 10) are timed and
the median and spread (min, quartiles, max) of seconds per iteration and
images/s are reported, with the peak memory during the timed iterations (CPU:
the process's peak resident memory; CUDA: Jittor's device memory in use),
as a table and one JSON line (prefix ``BENCHMARK_JSON``).  A busy machine
(other processes using more than 20% of the cores in the second before the
start) is flagged in both: on 2 cores a single competing process slows
timings up to 10x.

``--profile``: then runs ``--iters`` more iterations under Jittor's profiler
and prints where the time goes by op family (dense and depth-wise conv, matmul,
resize, softmax, reductions and norms, elementwise, optimizer, ...; forward and
backward where the kernel tells), per iteration, and the framework overhead
(the timed median minus the kernels' time: graph building in Python, Jittor's
scheduling and allocation).  The JSON line gets a ``profile`` entry.

``loader``: images/s of a config's training data (``data.train``) through
jseg's loader, for each worker count.  Without ``--data-root`` the config's
pipeline runs on a generated toy folder in the ADE20K layout (``--toy-size``
square images, default 512, about ADE20K's size), so no download is needed.
"""
import argparse
import contextlib
import json
import os
import platform
import statistics
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


# ----------------------------------------------------------------------------- model


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _gpu_name():
    import subprocess
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20).stdout.strip().splitlines()
        return out[0] if out else "CUDA GPU"
    except (OSError, subprocess.SubprocessError):
        return "CUDA GPU"


def _reset_peak_rss():
    """Reset the kernel's peak-RSS mark (Linux); False if it cannot be reset."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_used_by_others(seconds=1.0):
    """Fraction of all cores that other processes used over ``seconds`` (Linux /proc), or None."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
        return sum(v) - v[3] - v[4], sum(v), int(own[11]) + int(own[12])  # busy, total, own utime+stime
    try:
        b0, t0, o0 = sample()
        time.sleep(seconds)
        b1, t1, o1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, (b1 - b0) - (o1 - o0)) / max(1, t1 - t0)


def _quantile(sorted_xs, q):
    pos = (len(sorted_xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def summarize(times, batch):
    """Median and spread of per-iteration seconds, and the matching images/s."""
    ts = sorted(times)
    s = dict(median=statistics.median(ts), min=ts[0], p25=_quantile(ts, 0.25), p75=_quantile(ts, 0.75),
             max=ts[-1])
    # per-iteration throughput: its quantiles are the time quantiles mirrored
    ips = dict(median=batch / s["median"], min=batch / s["max"], p25=batch / s["p75"], p75=batch / s["p25"],
               max=batch / s["min"])
    return dict(s_per_iter=s, img_per_s=ips)


def op_family(name):
    """The op family of a kernel in Jittor's profiler report (its name is the kernel's JIT key): jseg's own
    kernels say theirs (``// jseg-kernel: ...`` in their source), Jittor's are told by their ops."""
    import re
    tag = re.search(r"jseg-kernel: ([^\n«]+)", name)
    if tag:
        return tag.group(1).strip()
    for prefix, family in (("mkl_conv_backward", "dense conv bwd (oneDNN)"), ("mkl_conv", "dense conv fwd (oneDNN)"),
                           ("mkl_matmul", "matmul (oneDNN)"), ("cudnn_conv_backward", "conv bwd (cuDNN)"),
                           ("cudnn_conv", "conv fwd (cuDNN)"), ("cublas", "matmul (cuBLAS)")):
        if name.startswith(prefix):
            return family
    ops = set(re.findall(r"opkey\d+:(\w+)", name)) or {name.split("\u00ab")[0]}
    for op, family in (("reindex_reduce", "scatter-add (reindex_reduce)"), ("reindex", "gather/pad (reindex)"),
                       ("reduce", "reductions, norms (with fused elementwise)"), ("transpose", "transpose"),
                       ("getitem", "slicing, concat"), ("setitem", "slicing, concat"), ("concat", "slicing, concat"),
                       ("code", "other jt.code")):
        if op in ops:
            return family
    return "elementwise"


def profile_steps(step, iters):
    """Run ``step`` ``iters`` times under Jittor's profiler: ``{family: [ms per iteration, calls per iteration]}``."""
    import jittor as jt
    with jt.profile_scope(warmup=0, rerun=0) as report:
        for _ in range(iters):
            step()
    header, rows = report[0], report[1:]
    i_name, i_time, i_count = header.index("Name"), header.index("TotalTime"), header.index("Count")
    families = {}
    for row in rows:
        f = families.setdefault(op_family(row[i_name]), [0.0, 0.0])
        f[0] += float(row[i_time]) / 1e6 / iters   # ns -> ms
        f[1] += int(row[i_count]) / iters
    return dict(sorted(families.items(), key=lambda kv: -kv[1][0]))


def format_profile(families, wall_s):
    total = sum(v[0] for v in families.values())
    lines = [f"{'op family':44s} {'ms/iter':>9s} {'share':>6s} {'calls/iter':>10s}"]
    for name, (ms, calls) in families.items():
        lines.append(f"{name:44s} {ms:9.1f} {ms / max(total, 1e-9):6.1%} {calls:10.0f}")
    lines.append(f"{'kernels, all':44s} {total:9.1f}")
    lines.append(f"{'framework overhead (timed median - kernels)':44s} {wall_s * 1000 - total:9.1f}")
    return "\n".join(lines)


def bench_model(config, shape=(512, 512), batch=1, train=False, iters=10, warmup=2, device="auto",
                cfg_options=(), seed=0, profile=False, fp16=None, out=print):
    import jittor as jt
    import numpy as np

    from .. import __version__
    from ..config import Config, parse_cfg_options
    from ..models import build_segmentor
    from ..models.random_streams import random_streams
    from ..device import select_device

    if device == "cuda" and not jt.has_cuda:
        from ..errors import UsageError
        raise UsageError("--device cuda: this Jittor has no CUDA (no GPU or no CUDA driver found)")
    on_gpu = select_device(device) == "cuda"
    if fp16:   # mixed precision as training runs it (jseg/engine/amp.py)
        from ..engine.amp import LossScaler, require_cuda
        require_cuda(fp16, fix="drop --fp16 or run on a GPU")

    def amp():
        return jt.flag_scope(auto_mixed_precision_level=5) if fp16 else contextlib.nullcontext()
    cfg = Config.fromfile(config)
    cfg.merge_options(parse_cfg_options(list(cfg_options)))
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    others = _cpu_used_by_others()
    busy = others is not None and others > 0.2
    H, W = shape
    jt.set_global_seed(seed)
    model = build_segmentor(cfg.model)
    keys = [(seed, 3, j) for j in range(batch)]   # random streams (Ham bases): the same draws every run
    rng = np.random.default_rng(seed)
    img = jt.array(rng.standard_normal((batch, 3, H, W), dtype=np.float32))
    if fp16:
        img = img.cast(fp16)
    img.sync()
    if train:
        from ..engine.amp import scaled_step
        from ..engine.optim import build_optimizer
        if "optimizer" not in cfg:
            from ..errors import UsageError
            raise UsageError(f"--train: {config} has no 'optimizer' (add one, e.g. through a schedule _base_)")
        num_classes = model.decode_head.num_classes
        gt = jt.array(rng.integers(0, num_classes, (batch, 1, H, W)).astype(np.int32))
        optimizer = build_optimizer(model, cfg.optimizer)
        model.train()

        scaler = LossScaler() if fp16 == "float16" else None

        def step():
            with random_streams(keys), amp():
                losses = model.forward_train(img, gt)
                loss, _ = model.parse_losses(losses)
                if scaler is not None:
                    scaled_step(optimizer, loss, scaler)
                else:
                    optimizer.step(loss)
            jt.sync_all(True)
    else:
        model.eval()

        def step():
            with jt.no_grad(), random_streams(keys), amp():
                model.encode_decode(img).sync()
            jt.sync_all(True)

    mode = ("train" if train else "eval") + (f" {fp16}" if fp16 else "")
    name = os.path.splitext(os.path.basename(config))[0]
    dev = _gpu_name() if on_gpu else f"{_cpu_name()}, {cores} cores"
    out(f"benchmark {name}: {mode}, input {batch}x3x{H}x{W}, {dev}; {warmup} warm-up + {iters} timed iterations")
    if busy:
        out(f"warning: other processes used {others:.0%} of the {cores} cores at the start: the machine is busy, "
            f"timings are unreliable")
    for i in range(warmup):
        t0 = time.perf_counter()
        step()
        out(f"  warm-up {i + 1}/{warmup}: {time.perf_counter() - t0:.3f} s")
    rss_reset = _reset_peak_rss()
    peak_dev = 0.0
    times = []
    for i in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        if on_gpu:
            peak_dev = max(peak_dev, jt.get_mem_info().total_cuda_used / 2 ** 20)
    res = dict(config=config, mode=mode, shape=[H, W], batch=batch, device="cuda" if on_gpu else "cpu",
               device_name=dev, iters=iters, warmup=warmup, **summarize(times, batch),
               times=[round(t, 6) for t in times], load_avg_start=round(load, 2),
               cpu_used_by_others_start=None if others is None else round(others, 3), busy=busy,
               jittor=jt.__version__, jseg=__version__)
    if on_gpu:
        res["peak_device_mem_mib"] = round(peak_dev, 1)
    else:
        res["peak_rss_mib"] = round(_peak_rss_mib(), 1)
        res["peak_rss_scope"] = "timed iterations" if rss_reset else "whole process"
    out(format_model_report(res))
    if profile:
        out(f"profiling {iters} more iterations...")
        families = profile_steps(step, iters)
        res["profile"] = {k: {"ms_per_iter": round(v[0], 3), "calls_per_iter": round(v[1], 1)}
                          for k, v in families.items()}
        out(format_profile(families, res["s_per_iter"]["median"]))
    out("BENCHMARK_JSON " + json.dumps(res))
    return res


def format_model_report(r):
    s, ips = r["s_per_iter"], r["img_per_s"]
    rows = [("", "median", "min", "p25", "p75", "max"),
            ("s/iter",) + tuple(f"{s[k]:.4f}" for k in ("median", "min", "p25", "p75", "max")),
            ("img/s",) + tuple(f"{ips[k]:.2f}" for k in ("median", "min", "p25", "p75", "max"))]
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    if "peak_rss_mib" in r:
        lines.append(f"peak memory: {r['peak_rss_mib']:.0f} MiB resident (process, {r['peak_rss_scope']})")
    else:
        lines.append(f"peak memory: {r['peak_device_mem_mib']:.0f} MiB on the device (Jittor allocator)")
    return "\n".join(lines)


def _model_parser():
    p = argparse.ArgumentParser(prog="python -m jseg.tools.benchmark", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="model config, or 'loader' for the data-loading benchmark")
    p.add_argument("--shape", type=int, nargs="+", default=[512, 512], metavar="H [W]")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--train", action="store_true", help="time training steps instead of inference")
    p.add_argument("--iters", type=int, default=10, help="timed iterations (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", action="store_true", help="then profile --iters more iterations by op family")
    p.add_argument("--fp16", choices=["float16", "bfloat16"],
                   help="mixed precision as fp16 configs train (CUDA only; float16 with dynamic loss scaling)")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors (or JSEG_DEBUG=1)")
    return p


def _main(argv):
    if argv and argv[0] == "loader":
        return _main_loader(argv)
    p = _model_parser()
    a = p.parse_args(argv)
    if len(a.shape) not in (1, 2) or min(a.shape) < 32:
        p.error(f"--shape takes H or H W, each at least 32; got {a.shape}")
    if a.batch < 1 or a.iters < 1 or a.warmup < 0:
        p.error("--batch and --iters must be at least 1, --warmup at least 0")
    if not os.path.isfile(a.config):
        p.error(f"config not found: {a.config}")
    bench_model(a.config, (a.shape[0], a.shape[-1]), a.batch, a.train, a.iters, a.warmup, a.device,
                a.cfg_options, a.seed, profile=a.profile, fp16=a.fp16)
    return 0


def main(argv=None):
    from ._cli import run
    return run("benchmark", _main, argv)


def _main_loader(argv):
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
