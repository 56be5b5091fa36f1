"""Run by test_distributed.py, with or without mpirun: k training steps of MODEL, then evaluation.

    python tests/engine/mpi_train.py TOY OUT K [segnext|segformer|cgrseg]
"""
import json
import sys

import numpy as np

import jseg  # noqa: F401
from jseg.checkpoint import model_state_dict
from jseg import dist
from jseg.engine.runner import Runner
from jseg.evaluation import evaluate
from tests.engine.train_helpers import tiny_cfg

toy, out, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = sys.argv[4] if len(sys.argv) > 4 else "segnext"
cfg = tiny_cfg(toy, max_iters=max(k, 1), batch_size=4, norm="SyncBN", model=model)   # k = 0: the initial weights
# SGD, not AdamW: Adam divides by the gradient's own RMS, so parameters whose true gradient is ~0 (conv biases
# feeding a train-mode BN) take +-lr steps driven by fp32 noise, and no two runs agree on them. SGD isolates
# what this test checks: sharding, gradient averaging and synchronised BN statistics.
cfg.optimizer = dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0)
runner = Runner(cfg, f"{out}_work", seed=3)
if k:
    runner.train()
result = evaluate(runner.model, runner.val_set, seed=3)
if dist.is_main():
    np.savez(f"{out}_params.npz", **model_state_dict(runner.model))
    with open(f"{out}_eval.json", "w") as f:
        json.dump({"world": dist.world_size(), "aAcc": result["aAcc"],
                   "IoU": [None if np.isnan(v) else v for v in result["IoU"]]}, f)
