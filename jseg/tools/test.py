"""Evaluate a checkpoint on a config's test set.

    python -m jseg.tools.test CONFIG CHECKPOINT [--aug-test] [--show-dir DIR] [--seed 0]
        [--cfg-options key=value ...]
    bash scripts/test.sh CONFIG CHECKPOINT [NUM_PROCS] [args...]

CHECKPOINT: a jseg ``.pkl`` or an official PyTorch ``.pth``.  ``--aug-test``:
multi-scale (0.5-1.75) + flip, as the official ``tools/test.py --aug-test``.
Prints aAcc / mIoU / mAcc and the per-class table (evaluation sharded over MPI
ranks, histograms summed); ``--show-dir`` writes colourised predictions.
"""
import argparse
import sys

from ..config import Config, parse_cfg_options


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jseg.tools.test", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("checkpoint")
    p.add_argument("--aug-test", action="store_true")
    p.add_argument("--show-dir")
    p.add_argument("--seed", type=int, default=0, help="seed of the Ham head's random bases")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE")
    a = p.parse_args(argv)

    from ..checkpoint import CheckpointError, load_checkpoint
    from ..datasets import build_dataset
    from ..datasets.transforms.test_time_aug import enable_aug_test
    from ..engine import dist
    from ..engine.runner import evaluate
    from ..evaluation import format_table
    from ..models import build_segmentor

    cfg = Config.fromfile(a.config)
    cfg.merge_options(parse_cfg_options(a.cfg_options))
    test_cfg = cfg.data.get("test", cfg.data.get("val"))
    if a.aug_test:
        enable_aug_test(test_cfg.pipeline)
    model = build_segmentor(cfg.model)
    try:
        report, _ = load_checkpoint(model, a.checkpoint)
    except CheckpointError as e:
        print(f"test: {e}", file=sys.stderr)
        return 1
    dataset = build_dataset(test_cfg)
    log = print if dist.is_main() else (lambda *_: None)
    log(f"{report}\nevaluating {dataset}")
    result = evaluate(model, dataset, seed=a.seed, log=log, show_dir=a.show_dir)
    log(format_table(result, dataset.CLASSES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
