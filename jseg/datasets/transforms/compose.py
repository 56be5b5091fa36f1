import numpy as np

from ...errors import UserError
from ...registry import Registry

TRANSFORMS = Registry("transform", autoload="jseg.datasets.transforms")


class DataError(UserError):
    """Bad input data (a file, a label value, a layout); the message names the file or key."""


def get_rng(results):
    rng = results.get("rng")
    if rng is None:
        rng = results["rng"] = np.random.default_rng()
    return rng


class Compose:
    """Apply transforms (config dicts or callables) in order; a transform may return None to drop a sample."""

    def __init__(self, transforms):
        self.transforms = []
        for t in transforms or []:
            if isinstance(t, dict):
                t = TRANSFORMS.build(t)
            elif not callable(t):
                raise TypeError(f"pipeline entries must be config dicts or callables, got {t!r}")
            self.transforms.append(t)

    def __call__(self, results):
        for t in self.transforms:
            results = t(results)
            if results is None:
                return None
        return results

    def __repr__(self):
        return "Compose(" + ", ".join(type(t).__name__ for t in self.transforms) + ")"
