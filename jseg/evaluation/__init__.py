"""Metrics (confusion areas -> aAcc, mIoU/mAcc, mDice, mFscore/mPrecision/mRecall) and the sharded evaluation
of a model on a dataset."""
from .metrics import confusion_areas, summarize, format_table  # noqa: F401
from .evaluator import evaluate, show_paths  # noqa: F401
