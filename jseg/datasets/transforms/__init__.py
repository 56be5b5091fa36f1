"""mmseg-0.x data transforms on ``results`` dicts of NumPy arrays.

Randomness: each transform draws from ``results['rng']`` (a ``np.random.Generator``
the dataset creates per sample from the run's seed), so a sample's augmentation
does not depend on which worker loads it.
"""
from .compose import TRANSFORMS, Compose, DataError  # noqa: F401
from . import formatting, geometric, loading, photometric, test_time_aug  # noqa: F401
