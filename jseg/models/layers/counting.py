"""Helpers for the per-module operation-count rules (the ``count_macs`` contract of ``jseg.analysis``).

A module class that ``jseg.analysis.count_macs`` meets defines, on the class itself (a subclass may
add ops, so it is not inherited)::

    def count_macs(self, convention, inputs, out) -> int

the operations of the module's own forward (children count themselves) under ``convention``:
``'torchprofile'`` (SegNeXt's count), ``'mmcv'`` (mmcv's module counter) or ``'nvlabs'``
(mmcv plus NVlabs' attention term; a module without such a term counts as under ``'mmcv'``).
"""
import math


def numel(v):
    """Element count of a Var (or anything with ``.shape``)."""
    return int(math.prod(v.shape))


def no_own_macs(self, convention, inputs, out):
    """The rule of a module whose own ops are adds, activations, dropout or reshapes only."""
    return 0
