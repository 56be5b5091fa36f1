"""python -m jseg.tools.benchmark CONFIG on the micro model (shape of the eval fixtures: no new kernels)."""
import json

import pytest

from jseg.tools.benchmark import main, summarize
from tests.helpers import MICRO_CONFIG


def test_summary_statistics():
    s = summarize([0.4, 0.1, 0.2, 0.3], batch=2)
    assert s["s_per_iter"] == pytest.approx(dict(median=0.25, min=0.1, p25=0.175, p75=0.325, max=0.4))
    assert s["img_per_s"]["median"] == pytest.approx(8.0)
    assert s["img_per_s"]["max"] == pytest.approx(20.0) and s["img_per_s"]["min"] == pytest.approx(5.0)


def test_benchmark_eval_json_line(capsys):
    assert main([MICRO_CONFIG, "--shape", "128", "160", "--batch", "2", "--iters", "3", "--warmup", "1",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    line = [ln for ln in out.splitlines() if ln.startswith("BENCHMARK_JSON ")]
    assert len(line) == 1 and "s/iter" in out and "img/s" in out and "peak memory" in out
    r = json.loads(line[0].split(" ", 1)[1])
    assert r["mode"] == "eval" and r["shape"] == [128, 160] and r["batch"] == 2 and r["device"] == "cpu"
    assert len(r["times"]) == 3 and r["s_per_iter"]["min"] <= r["s_per_iter"]["median"] <= r["s_per_iter"]["max"]
    assert r["peak_rss_mib"] > 0 and 0 <= r["cpu_used_by_others_start"] <= 1


def test_benchmark_refuses_bad_input(capsys):
    assert main([MICRO_CONFIG, "--train", "--iters", "1", "--warmup", "0", "--shape", "128", "160"]) == 2
    assert "no 'optimizer'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["no/such/config.py"])
    assert main([MICRO_CONFIG, "--fp16", "float16", "--device", "cpu", "--iters", "1"]) == 2
    assert "needs a CUDA GPU and this run is on the CPU; drop --fp16" in capsys.readouterr().err


def test_profile_families_add_up(capsys):
    """--profile: a table by op family whose kernel times add up, jseg's kernels named by their tag (the
    micro model's depth-wise convs and resize), and a JSON ``profile`` entry."""
    assert main([MICRO_CONFIG, "--shape", "128", "160", "--batch", "2", "--iters", "2", "--warmup", "1",
                 "--device", "cpu", "--profile"]) == 0
    out = capsys.readouterr().out
    r = json.loads([ln for ln in out.splitlines() if ln.startswith("BENCHMARK_JSON ")][0].split(" ", 1)[1])
    prof = r["profile"]
    assert "depthwise conv fwd" in prof and "resize fwd" in prof and "dense conv fwd (oneDNN)" in prof
    total = sum(v["ms_per_iter"] for v in prof.values())
    assert 0 < total < 1000 * r["s_per_iter"]["max"] * 2
    assert "kernels, all" in out and "framework overhead" in out


def test_op_family_names():
    from jseg.tools.benchmark import op_family
    assert op_family("code\u00abHEADER:x\u00abCODE:\n// jseg-kernel: softmax bwd\nfoo") == "softmax bwd"
    assert op_family("mkl_conv_backward_w\u00abTxd:float32") == "dense conv bwd (oneDNN)"
    assert op_family("mkl_matmul\u00abT:float32") == "matmul (oneDNN)"
    assert op_family("\u00abopkey0:broadcast_to\u00abopkey1:reindex_reduce\u00abx") == "scatter-add (reindex_reduce)"
    assert op_family("\u00abopkey0:binary\u00abopkey1:reduce\u00abx") == "reductions, norms (with fused elementwise)"
    assert op_family("\u00abopkey0:binary\u00abopkey1:unary\u00abx") == "elementwise"
