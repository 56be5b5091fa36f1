"""Evaluate a checkpoint on a config's test set.

    python -m jseg.tools.test CONFIG CHECKPOINT [--eval mIoU mDice mFscore] [--aug-test] [--show-dir DIR]
        [--seed 0] [--no-strict] [--force] [--cfg-options KEY=VALUE ...] [--debug]
    bash scripts/test.sh CONFIG CHECKPOINT [NUM_PROCS] [args...]

CHECKPOINT: a jseg ``.pkl`` or an official PyTorch ``.pth``.  ``--aug-test``:
multi-scale (0.5-1.75) + flip, as the official ``tools/test.py --aug-test``.
Prints aAcc and the chosen metrics with the per-class table (mmseg's
definitions: IoU/Acc, Dice, F-score/precision/recall; sharded over MPI ranks,
histograms summed); ``--show-dir`` writes colourised predictions (existing
files there are not overwritten unless ``--force``).  ``--no-strict`` loads a
checkpoint whose keys do not all match the model (the report lists what was not loaded).

Exit status: 0 done; 2 unusable input (one line says which file or key); 130 / 143
stopped by SIGINT / SIGTERM.  ``--debug`` (or ``JSEG_DEBUG=1``) adds tracebacks.
"""
import argparse
import os
import sys

from ..config import Config, parse_cfg_options
from ..evaluation.metrics import METRICS, metric_list


def _main(argv):
    from ._cli import add_debug_flag
    p = argparse.ArgumentParser(prog="python -m jseg.tools.test", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("checkpoint")
    p.add_argument("--aug-test", action="store_true")
    p.add_argument("--show-dir")
    p.add_argument("--seed", type=int, default=0, help="seed of the Ham head's random bases")
    p.add_argument("--no-strict", action="store_true", help="load a checkpoint that does not match every key")
    p.add_argument("--force", action="store_true", help="overwrite existing predictions in --show-dir")
    p.add_argument("--eval", nargs="+", metavar="METRIC", choices=list(METRICS),
                   help="metrics: any of mIoU mDice mFscore (default: the config's evaluation.metric, else mIoU)")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE")
    add_debug_flag(p)
    a = p.parse_args(argv)

    from ..checkpoint import load_checkpoint
    from ..datasets import build_dataset
    from ..datasets.transforms.test_time_aug import enable_aug_test
    from .. import dist
    from ..engine.compile_watch import CompileWatch
    from ..evaluation import evaluate, show_paths
    from ..errors import UsageError
    from ..evaluation import format_table
    from ..models import build_segmentor

    cfg = Config.fromfile(a.config)
    cfg.merge_options(parse_cfg_options(a.cfg_options))
    test_cfg = cfg.data.get("test") or cfg.data.get("val")
    if test_cfg is None:
        raise UsageError(f"{a.config}: data.test (or data.val) is missing: nothing to evaluate on")
    if a.aug_test:
        enable_aug_test(test_cfg.pipeline)
    try:
        metrics = metric_list(a.eval or (cfg.get("evaluation") or {}).get("metric") or "mIoU")
    except KeyError as e:
        raise UsageError(f"{a.config}: evaluation.metric: {e.args[0]} (or pass --eval)") from None
    model = build_segmentor(cfg.model)
    report, _ = load_checkpoint(model, a.checkpoint, strict=not a.no_strict,
                                strict_hint="pass --no-strict to load the matching keys anyway")
    dataset = build_dataset(test_cfg)
    if a.show_dir and not a.force:
        existing = [q for q in show_paths(dataset, a.show_dir) if os.path.lexists(q)]
        if existing:
            raise UsageError(f"--show-dir {a.show_dir} already holds {len(existing)} of the predictions this run "
                             f"writes, e.g. {existing[0]}; pass --force to overwrite them or choose another folder")
    log = print if dist.is_main() else (lambda *_: None)
    log(f"{report}\nevaluating {dataset}")
    with CompileWatch(log, enabled=dist.is_main()):   # a first run compiles the model's kernels: say so
        result = evaluate(model, dataset, seed=a.seed, log=log, show_dir=a.show_dir, metrics=metrics)
    log(format_table(result, dataset.CLASSES))
    return 0


def main(argv=None):
    from ._cli import run
    return run("test", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
