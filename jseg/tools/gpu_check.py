"""One command that checks a machine for jseg: environment, parity, speed beside PyTorch, MPI training.

    bash scripts/gpu_check.sh [--out DIR] [--cpu] [--wheels DIR]       (sets up Python first)
    python -m jseg.tools.gpu_check [--out DIR] [--cpu] [--torch-python PY] [--skip-torch]

Checks, in order (each one's result and figures go to ``DIR/report.json`` and ``DIR/report.md``):

a. environment: driver, GPU, nvcc, CUDA runtime, cuDNN, Jittor's flags and what ``jseg/_env.py``
   decided (``cuda_stack``, ``cuda_plan``);
b. parity: the model tests against the official PyTorch fixtures (SegNeXt, SegFormer, CGRSeg;
   outputs and training-step gradients) with CUDA on and TF32 off (``JSEG_TEST_DEVICE=cuda``);
c. speed: eval 1x3x512x512 and a train step 2x3x512x512 of SegNeXt-T/S and SegFormer-B0, float32
   and mixed precision (float16), and the same models in PyTorch/mmseg 1.2.2 when an interpreter with
   torch and mmseg is at hand (``--torch-python``, default this one);
d. training: the quick start for 50 iterations on 2 MPI ranks sharing the one GPU, then its
   evaluation with ``tools.test``.

``--cpu`` runs the same sequence on the CPU at tiny sizes (64x64, 2 timed iterations, 10 training
iterations; no mixed precision, which needs CUDA): the script's own smoke test.  Exit status 1 if
any check failed, 0 if all passed (skipped checks say why).  At most ~8 minutes on one GPU.
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

from ..errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = {
    "SegNeXt-T": ("configs/segnext/segnext_tiny_512x512_ade20k_160k.py", "segnext_t"),
    "SegNeXt-S": ("configs/segnext/segnext_small_512x512_ade20k_160k.py", "segnext_s"),
    "SegFormer-B0": ("configs/segformer/segformer_mit-b0_512x512_ade20k_160k.py", "segformer_b0"),
}
PARITY_TESTS = ["tests/models/test_parity.py", "tests/models/test_segformer.py", "tests/models/test_cgrseg.py",
                "tests/models/test_mscan.py", "tests/models/test_mit.py", "tests/models/test_efficientformer_v2.py",
                "tests/models/test_ham_head.py"]
SIZES = {"cuda": dict(shape=512, eval_batch=1, train_batch=2, iters=10, warmup=3, train_iters=50),
         "cpu": dict(shape=64, eval_batch=1, train_batch=2, iters=2, warmup=1, train_iters=10)}


def _run(cmd, timeout, env=None, cwd=ROOT):
    t0 = time.time()
    try:
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr, time.time() - t0
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return 124, out, f"timed out after {timeout} s", time.time() - t0


def _tail(text, n=15):
    return "\n".join(text.strip().splitlines()[-n:])


def check_environment(device):
    import jittor as jt
    import numpy as np
    from .. import _env
    info = {"python": sys.version.split()[0], "numpy": np.__version__, "jittor": jt.__version__,
            "platform": platform.platform(), "has_cuda": bool(jt.has_cuda),
            "flags": {k: getattr(jt.flags, k) for k in ("use_cuda", "use_tensorcore", "nvcc_path", "cc_path",
                                                        "use_parallel_op_compiler")},
            "env": {k: os.environ.get(k) for k in ("conv_opt", "nvcc_path", "CUDA_VISIBLE_DEVICES", "JITTOR_HOME")},
            "jseg_env": {k: v for k, v in _env.STATE.items() if k != "jittor_config"}}
    smi = shutil.which("nvidia-smi")
    if smi:
        code, out, _, _ = _run([smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"], 60)
        info["gpus"] = out.strip().splitlines() if code == 0 else []
        code, out, _, _ = _run([smi], 60)
        m = re.search(r"CUDA Version:\s*([\d.]+)", out)
        info["driver_cuda"] = m.group(1) if m else None
    nvcc = jt.flags.nvcc_path
    if nvcc:
        code, out, _, _ = _run([nvcc, "--version"], 60)
        m = re.search(r"release ([\d.]+)", out)
        info["nvcc_version"] = m.group(1) if m else None
    stack = _env.STATE.get("cuda_stack") or {}
    if stack.get("cudnn"):
        c = stack["cudnn"]
        info["cudnn"] = ".".join(map(str, c.get("header_version") or c.get("version") or ())) + f" at {c['dir']}"
    info["cudnn_used_by_jittor"] = bool(getattr(__import__("jittor.compile_extern").compile_extern, "cudnn", None))
    ok = device == "cpu" or info["has_cuda"]
    why = None if ok else "Jittor found no CUDA (see jseg_env.cuda_plan notes)"
    return {"ok": ok, "why": why, "info": info}


def check_parity(device, timeout):
    env = dict(os.environ, JSEG_TEST_DEVICE=device, use_tensorcore="0")
    code, out, err, secs = _run([sys.executable, "-m", "pytest", *PARITY_TESTS, "-q", "-p", "no:cacheprovider",
                                 "-o", "addopts="], timeout, env=env)
    summary = out.strip().splitlines()[-1] if out.strip() else err.strip()[-300:]
    res = {"ok": code == 0, "seconds": round(secs, 1), "summary": summary}
    if code != 0:
        res["why"] = _tail(out + "\n" + err, 40)
    return res


def _jseg_bench(config, mode, device, size, fp16, timeout):
    batch = size["train_batch"] if mode == "train" else size["eval_batch"]
    cmd = [sys.executable, "-m", "jseg.tools.benchmark", config, "--shape", str(size["shape"]), "--batch", str(batch),
           "--iters", str(size["iters"]), "--warmup", str(size["warmup"]), "--device", device]
    cmd += ["--train"] if mode == "train" else []
    cmd += ["--fp16", fp16] if fp16 else []
    code, out, err, _ = _run(cmd, timeout)
    line = next((x for x in out.splitlines() if x.startswith("BENCHMARK_JSON ")), None)
    if code != 0 or line is None:
        return {"ok": False, "why": _tail(out + "\n" + err, 20)}
    r = json.loads(line[len("BENCHMARK_JSON "):])
    mem = r.get("peak_device_mem_mib", r.get("peak_rss_mib"))
    return {"ok": True, "s_per_iter": r["s_per_iter"]["median"], "peak_mib": mem}


def _torch_bench(torch_python, name, mode, device, size, timeout):
    batch = size["train_batch"] if mode == "train" else size["eval_batch"]
    cmd = [torch_python, os.path.join(ROOT, "jseg", "tools", "torch_bench.py"), name, mode, device,
           str(size["shape"]), str(size["shape"]), str(batch), str(size["iters"]), str(size["warmup"])]
    code, out, err, _ = _run(cmd, timeout, cwd="/")
    line = next((x for x in out.splitlines() if x.startswith("TORCH_BENCH_JSON ")), None)
    if code != 0 or line is None:
        return {"ok": False, "why": _tail(out + "\n" + err, 20)}
    return {"ok": True, "s_per_iter": json.loads(line[len("TORCH_BENCH_JSON "):])["median_s"]}


def torch_available(torch_python):
    code, out, err, _ = _run([torch_python, "-c", "import torch, mmseg, mmengine; print(torch.__version__, "
                              "mmseg.__version__, torch.cuda.is_available())"], 300, cwd="/")
    return (out.strip() if code == 0 else None), _tail(err, 3)


def check_speed(device, size, torch_python, timeout):
    rows, ok = [], True
    have_torch, why_not = (None, "--skip-torch") if torch_python is None else torch_available(torch_python)
    if have_torch and device == "cuda" and not have_torch.endswith("True"):
        have_torch, why_not = None, f"torch has no CUDA here ({have_torch})"
    precisions = [None, "float16"] if device == "cuda" else [None]
    for label, (config, torch_name) in MODELS.items():
        for mode in ("eval", "train"):
            for fp16 in precisions:
                row = {"model": label, "mode": mode, "precision": fp16 or "float32",
                       "jseg": _jseg_bench(config, mode, device, size, fp16, timeout)}
                if fp16 is None and have_torch:
                    row["torch"] = _torch_bench(torch_python, torch_name, mode, device, size, timeout)
                    if row["torch"]["ok"] and row["jseg"]["ok"]:
                        row["ratio"] = round(row["jseg"]["s_per_iter"] / row["torch"]["s_per_iter"], 3)
                ok = ok and row["jseg"]["ok"] and row.get("torch", {"ok": True})["ok"]
                rows.append(row)
    res = {"ok": ok, "rows": rows, "torch": have_torch or f"skipped: {why_not}"}
    if device == "cpu":
        res["note"] = "mixed precision not timed: it needs CUDA"
    return res


def check_training(device, size, out_dir, timeout):
    if shutil.which("mpirun") is None:
        return {"ok": True, "skipped": "mpirun not found (apt-get install openmpi-bin libopenmpi-dev)"}
    try:
        import cv2  # noqa: F401  (the data pipeline's image library)
    except ImportError:
        return {"ok": True, "skipped": "OpenCV (cv2) is not installed: the data pipeline needs it "
                                       "(pip install opencv-python-headless)"}
    wd = os.path.join(out_dir, "quickstart")
    if os.path.exists(wd):
        shutil.rmtree(wd)
    n = size["train_iters"]
    env = dict(os.environ, JSEG_GPU_SHARE="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cfg = "configs/quickstart/segnext_toy.py"
    opts = [f"runner.max_iters={n}", "evaluation.interval=0", f"checkpoint_config.interval={n}",
            f"log_config.interval={max(n // 5, 1)}"]
    flags = ["--allow-run-as-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    if device == "cpu":
        opts.append("data.workers_per_gpu=0")
    cmd = ["mpirun", *flags, "--oversubscribe", "-np", "2", "-x", "JSEG_GPU_SHARE", "-x", "PYTHONPATH",
           sys.executable, "-m", "jseg.tools.train", cfg, "--work-dir", wd, "--cfg-options", *opts]
    code, out, err, secs = _run(cmd, timeout, env=env)
    res = {"ok": code == 0, "train_seconds": round(secs, 1), "iterations": n, "ranks": 2}
    if code != 0:
        res["why"] = _tail(out + "\n" + err, 30)
        return res
    losses = re.findall(r"decode\.loss_ce ([\d.]+)", out + err)
    res["loss_ce"] = [float(x) for x in losses]
    ckpt = os.path.join(wd, f"iter_{n}.pkl")
    code, out, err, secs = _run([sys.executable, "-m", "jseg.tools.test", cfg, ckpt], timeout, env=env)
    m = re.search(r"mIoU ([\d.]+)", out + err)
    res.update(test_ok=code == 0, test_seconds=round(secs, 1), mIoU=float(m.group(1)) if m else None)
    res["ok"] = code == 0 and m is not None and len(losses) > 0
    if not res["ok"]:
        res["why"] = _tail(out + "\n" + err, 30)
    return res


def write_report(report, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "report.json")
    with open(path + ".tmp", "w") as f:
        json.dump(report, f, indent=1, default=str)
    os.replace(path + ".tmp", path)
    md = [f"# jseg machine check ({report['device']}), {report['date']}", "",
          f"Result: **{'PASS' if report['ok'] else 'FAIL'}**", ""]
    for name, r in report["checks"].items():
        status = "skipped" if r.get("skipped") else ("pass" if r["ok"] else "FAIL")
        md.append(f"## {name}: {status}")
        if r.get("skipped"):
            md.append(r["skipped"])
        if name == "environment":
            for k, v in r["info"].items():
                md.append(f"- {k}: `{json.dumps(v, default=str)}`")
        elif name == "parity":
            md.append(f"{r['summary']} ({r['seconds']} s)")
        elif name == "speed":
            md.append(f"PyTorch/mmseg: {r['torch']}" + (f"; {r['note']}" if r.get("note") else ""))
            md += ["", "| model | mode | precision | jseg s/it | peak MiB | torch s/it | jseg/torch |",
                   "|---|---|---|---|---|---|---|"]
            for row in r["rows"]:
                j, t = row["jseg"], row.get("torch")
                js = f"{j['s_per_iter']:.4f}" if j["ok"] else "failed"
                ts = "" if t is None else (f"{t['s_per_iter']:.4f}" if t["ok"] else "failed")
                md.append(f"| {row['model']} | {row['mode']} | {row['precision']} | {js} | "
                          f"{j.get('peak_mib', '')} | {ts} | {row.get('ratio', '')} |")
        elif name == "training" and not r.get("skipped"):
            md.append(f"{r['ranks']} ranks, {r['iterations']} iterations in {r['train_seconds']} s; loss_ce "
                      f"{r.get('loss_ce')}; evaluation mIoU {r.get('mIoU')}")
        if r.get("why"):
            md += ["```", str(r["why"]), "```"]
        md.append("")
    with open(os.path.join(out_dir, "report.md.tmp"), "w") as f:
        f.write("\n".join(md))
    os.replace(os.path.join(out_dir, "report.md.tmp"), os.path.join(out_dir, "report.md"))


def _main(argv):
    p = argparse.ArgumentParser(prog="python -m jseg.tools.gpu_check", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="gpu_check_report")
    p.add_argument("--cpu", action="store_true", help="the same sequence on the CPU at tiny sizes")
    p.add_argument("--torch-python", default=sys.executable,
                   help="an interpreter with torch and mmseg 1.2.2 for the comparison (default: this one)")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--only", nargs="+", choices=["environment", "parity", "speed", "training"])
    p.add_argument("--timeout", type=int, default=900, help="seconds per sub-command (default 900)")
    p.add_argument("--debug", action="store_true")
    a = p.parse_args(argv)
    device = "cpu" if a.cpu else "cuda"
    size = SIZES[device]
    out_dir = os.path.abspath(a.out)
    report = {"device": device, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "checks": {}, "ok": True}
    todo = a.only or ["environment", "parity", "speed", "training"]

    def record(name, fn):
        t0 = time.time()
        print(f"gpu_check: {name} ...", flush=True)
        try:
            r = fn()
        except Exception as e:  # a check that crashes is a failed check, and the others still run
            r = {"ok": False, "why": f"{type(e).__name__}: {e}"}
        r.setdefault("seconds", round(time.time() - t0, 1))
        report["checks"][name] = r
        report["ok"] = report["ok"] and bool(r["ok"])
        print(f"gpu_check: {name}: {'skipped' if r.get('skipped') else ('pass' if r['ok'] else 'FAIL')} "
              f"({r['seconds']} s)", flush=True)
        write_report(report, out_dir)   # after every check: a killed run keeps what it measured

    if "environment" in todo:
        record("environment", lambda: check_environment(device))
    if device == "cuda" and not report["checks"].get("environment", {"ok": True})["ok"]:
        raise UsageError("gpu_check: Jittor found no CUDA on this machine (report in "
                         f"{out_dir}/report.md); use --cpu for the CPU smoke test")
    if "parity" in todo:
        record("parity", lambda: check_parity(device, a.timeout))
    if "speed" in todo:
        record("speed", lambda: check_speed(device, size, None if a.skip_torch else a.torch_python, a.timeout))
    if "training" in todo:
        record("training", lambda: check_training(device, size, out_dir, a.timeout))
    print(f"gpu_check: {'PASS' if report['ok'] else 'FAIL'}; report in {out_dir}/report.md and report.json")
    return 0 if report["ok"] else 1


def main(argv=None):
    from ._cli import run
    return run("gpu_check", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
