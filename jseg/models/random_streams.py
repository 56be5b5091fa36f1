"""Per-sample random streams: where a module that draws random numbers in its forward takes them.

    with random_streams(keys=[(seed, 0, iteration, j) for j in global_batch_positions]):
        losses = model.forward_train(img, gt)

Inside the context, sample ``j``'s ``k``-th draw comes from ``np.random.default_rng([*keys[j], k])``:
what a sample gets depends on its key only, not on which process or batch it is in (N processes
compute what one does), and a run that restarts from iteration t draws what it would have drawn
(exact resume).  ``inject={stream: [array, ...]}`` queues ready values instead (a parity check
replays the draws of the PyTorch reference), used in order, one per forward.  Outside any context a
module draws from Jittor's RNG (``jt.set_global_seed``), as the official code does.

A stochastic module names its stream with a class attribute ``random_stream`` (the key a parity
reference stores its draws under, e.g. ``'nmf_bases'``) and draws through :func:`current`; SegNeXt's
``NMF2D`` is the one today.  Nothing outside such a module knows what it draws.
"""
import contextlib
import contextvars

import numpy as np

_CURRENT = contextvars.ContextVar("jseg_random_streams", default=None)


class RandomStreams:
    """The state of one ``random_streams`` context: per-sample keys, injected values, draws so far."""

    def __init__(self, keys=None, inject=None):
        self.keys = None if keys is None else [tuple(int(v) for v in k) for k in keys]
        self._injected = {name: [np.array(v, dtype=np.float32, order="C", copy=True) for v in values]
                          for name, values in (inject or {}).items()}
        self.draws = 0

    def take_injected(self, stream):
        """The next injected value of ``stream``, or None when none is queued."""
        queue = self._injected.get(stream)
        return queue.pop(0) if queue else None

    def pending(self, stream):
        """How many injected values of ``stream`` are still unused."""
        return len(self._injected.get(stream, ()))

    def uniform(self, samples, per_sample_shape):
        """``U[0, 1)`` float32 of shape ``(samples * per_sample_shape[0], *per_sample_shape[1:])`` from the
        samples' keys, or None without keys (the caller then uses Jittor's RNG)."""
        if self.keys is None:
            return None
        if len(self.keys) != samples:
            raise ValueError(f"{len(self.keys)} sample keys set, this forward has {samples} samples")
        k = self.draws
        self.draws += 1
        return np.concatenate([np.random.default_rng([*key, k]).random(per_sample_shape, dtype=np.float32)
                               for key in self.keys])


@contextlib.contextmanager
def random_streams(keys=None, inject=None):
    """Per-sample keys and/or injected values for the forwards inside; yields the ``RandomStreams``."""
    streams = RandomStreams(keys, inject)
    token = _CURRENT.set(streams)
    try:
        yield streams
    finally:
        _CURRENT.reset(token)


def current():
    """The innermost active ``RandomStreams``, or None."""
    return _CURRENT.get()


def stream_names(model):
    """``{stream name: module class}`` of the stochastic modules in ``model``."""
    return {type(m).random_stream: type(m) for m in model.modules() if getattr(type(m), "random_stream", None)}
