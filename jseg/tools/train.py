"""Train a segmentor.

    python -m jseg.tools.train CONFIG [--work-dir DIR] [--seed 0] [--resume CKPT]
        [--cfg-options key=value ...]
    bash scripts/train.sh CONFIG [NUM_PROCS] [args...]        (NUM_PROCS > 1: Open MPI)

The config's ``data.batch_size`` is the global batch (split over the processes).
The resolved config is written to the work dir (default ``work_dirs/<config name>``)
with the logs and checkpoints.  ``--resume`` continues a run exactly; a run never
resumes by itself.
"""
import argparse
import os
import sys

from ..config import Config, parse_cfg_options


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jseg.tools.train", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--work-dir")
    p.add_argument("--seed", type=int, default=None, help="default: the config's seed, else 0")
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint written by jseg training")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE")
    a = p.parse_args(argv)

    from ..engine import dist
    from ..engine.runner import Runner, TrainingStopped
    cfg = Config.fromfile(a.config)
    cfg.merge_options(parse_cfg_options(a.cfg_options))
    work_dir = a.work_dir or cfg.get("work_dir") or os.path.join(
        "work_dirs", os.path.splitext(os.path.basename(a.config))[0])
    seed = a.seed if a.seed is not None else cfg.get("seed", 0)
    if dist.is_main():
        os.makedirs(work_dir, exist_ok=True)
        cfg.dump(os.path.join(work_dir, os.path.basename(a.config) if a.config.endswith(".py") else "config.py"))
    try:
        runner = Runner(cfg, work_dir, seed=seed, resume=a.resume)
        runner.train()
    except TrainingStopped as e:
        print(f"train: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
