"""Inference time of a model in jseg and of its ONNX export in onnxruntime, same process, alternating.

    python docs/perf/onnxruntime_vs_jseg.py CONFIG [H W]

Random weights (the time does not depend on them), the Ham head's bases as constants (--bases-seed 0),
onnxruntime's CPU provider with 2 intra-op threads; 3 warm-up runs each, then the median of 10.
A measuring script for docs/performance.md, not part of jseg.
"""
import statistics
import sys
import time

import numpy as np
import jseg  # noqa: F401  (Jittor's environment first)
import jittor as jt
import onnxruntime as ort

from jseg.config import Config
from jseg.export.onnx_export import build_graph
from jseg.models import build_segmentor


def main(cfg_path, h=512, w=512):
    jt.set_global_seed(0)
    model = build_segmentor(Config.fromfile(cfg_path).model).eval()
    g, _ = build_graph(model, (h, w), 1, bases_seed=0)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(g.to_model().SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)

    def run_jseg():
        with jt.no_grad():
            return model.encode_decode(jt.array(x)).numpy()

    def run_ort():
        return sess.run(["logits"], {"input": x})[0]

    for _ in range(3):
        run_jseg()
        run_ort()
    tj, to = [], []
    for _ in range(10):
        t = time.perf_counter()
        run_jseg()
        tj.append(time.perf_counter() - t)
        t = time.perf_counter()
        run_ort()
        to.append(time.perf_counter() - t)
    mj, mo = statistics.median(tj), statistics.median(to)
    print(f"{cfg_path} 1x3x{h}x{w}: jseg {mj:.3f} s, onnxruntime {mo:.3f} s, jseg/onnxruntime {mj / mo:.2f}")


if __name__ == "__main__":
    main(sys.argv[1], *(int(v) for v in sys.argv[2:4]))
