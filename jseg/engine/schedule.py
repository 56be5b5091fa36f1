"""Learning-rate schedules with mmcv 1.x ``LrUpdaterHook`` semantics (by iteration).

Poly: ``regular = (lr0 - min_lr) * (1 - t / max_iters) ** power + min_lr`` for the 0-based
iteration ``t``; linear warmup for ``t < warmup_iters``:
``lr = regular * (1 - (1 - t / warmup_iters) * (1 - warmup_ratio))``.
"""


class PolyLR:
    def __init__(self, max_iters, power=1.0, min_lr=0.0, warmup=None, warmup_iters=0, warmup_ratio=0.1,
                 by_epoch=False, policy="poly"):
        if policy != "poly" or by_epoch:
            raise NotImplementedError("lr_config: only policy='poly' with by_epoch=False is implemented")
        if warmup not in (None, "linear"):
            raise NotImplementedError(f"lr_config: warmup {warmup!r} not implemented (None or 'linear')")
        self.max_iters = max_iters
        self.power = power
        self.min_lr = min_lr
        self.warmup = warmup
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio

    def lr(self, lr0, t):
        regular = (lr0 - self.min_lr) * (1 - t / self.max_iters) ** self.power + self.min_lr
        if self.warmup == "linear" and t < self.warmup_iters:
            k = (1 - t / self.warmup_iters) * (1 - self.warmup_ratio)
            return regular * (1 - k)
        return regular

    def apply(self, optimizer, t):
        """Set every group's lr for iteration ``t`` (before its step)."""
        for g in optimizer.param_groups:
            g["lr"] = self.lr(g["initial_lr"], t)
        optimizer.lr = optimizer.param_groups[0]["lr"]


def build_lr_schedule(lr_config, max_iters):
    cfg = dict(lr_config)
    return PolyLR(max_iters=max_iters, **cfg)
