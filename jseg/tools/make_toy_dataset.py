"""Write the embedded toy dataset (ADE20K layout) to a folder.

    python -m jseg.tools.make_toy_dataset OUT [--train 200] [--val 50] [--size 256] [--seed 0]

Deterministic: the same arguments give the same files.  Training configs that
use ``ToyDataset`` generate it on first use, so this is only needed to look at
it or to make a variant.
"""
import argparse
import sys

from ..datasets.toy import make_toy_dataset


def _main(argv):
    p = argparse.ArgumentParser(prog="python -m jseg.tools.make_toy_dataset", description=__doc__.split("\n\n")[0],
                                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="folder to create")
    p.add_argument("--train", type=int, default=200, help="training images")
    p.add_argument("--val", type=int, default=50, help="validation images")
    p.add_argument("--size", type=int, default=256, help="image side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors (or JSEG_DEBUG=1)")
    a = p.parse_args(argv)
    make_toy_dataset(a.out, a.train, a.val, a.size, a.seed, log=print)
    return 0


def main(argv=None):
    from ._cli import run
    return run("make_toy_dataset", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
