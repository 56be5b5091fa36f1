"""Train a segmentor.

    python -m jseg.tools.train CONFIG [--work-dir DIR] [--seed 0] [--resume CKPT] [--force]
        [--cfg-options KEY=VALUE ...] [--debug]
    bash scripts/train.sh CONFIG [NUM_PROCS] [args...]        (NUM_PROCS > 1: Open MPI)

The config's ``data.batch_size`` is the global batch (split over the processes).
The resolved config is written to the work dir (default ``work_dirs/<config name>``)
with the logs and checkpoints.  ``--resume`` continues a run exactly; a run never
resumes by itself.  A run refuses a work dir whose checkpoints it would overwrite
(``--force`` allows it) and deletes only files it wrote.

``--cfg-options``: ``KEY=VALUE`` changes a key the config has (``runner.max_iters=100``,
``data.train.pipeline.2.img_scale=(1024,512)``); a misspelled key or a value of the
wrong kind is refused with the closest valid key.  ``+KEY=VALUE`` adds a new key.

Exit status: 0 done; 2 unusable input (config, checkpoint, data, work dir: one line
says which); 3 non-finite loss; 130 / 143 stopped by SIGINT (Ctrl-C) / SIGTERM; 1 other
failures.  ``--debug`` (or ``JSEG_DEBUG=1``) adds tracebacks.
"""
import argparse
import os
import sys

from ..config import Config, parse_cfg_options


def _main(argv):
    from ._cli import add_debug_flag
    p = argparse.ArgumentParser(prog="python -m jseg.tools.train", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--work-dir")
    p.add_argument("--seed", type=int, default=None, help="default: the config's seed, else 0")
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint written by jseg training")
    p.add_argument("--force", action="store_true",
                   help="train in a work dir whose later checkpoints this run would overwrite; resume even if "
                        "the training set or batch changed")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE")
    add_debug_flag(p)
    a = p.parse_args(argv)

    from ..engine.runner import Runner, TrainingStopped
    cfg = Config.fromfile(a.config)
    cfg.merge_options(parse_cfg_options(a.cfg_options))
    work_dir = a.work_dir or cfg.get("work_dir") or os.path.join(
        "work_dirs", os.path.splitext(os.path.basename(a.config))[0])
    seed = a.seed if a.seed is not None else cfg.get("seed", 0)
    try:
        runner = Runner(cfg, work_dir, seed=seed, resume=a.resume, force=a.force)
        runner.train()
    except TrainingStopped as e:
        print(f"train: {e}", file=sys.stderr)
        return 3
    return 0


def main(argv=None):
    from ._cli import run
    return run("train", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
