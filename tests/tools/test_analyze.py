"""python -m jseg.tools.analyze: the table and the JSON line."""
import json

from jseg.tools.analyze import main
from tests.helpers import ROOT


def test_analyze_table_and_json(capsys):
    cfg = f"{ROOT}/configs/segnext/segnext_tiny_512x512_ade20k_160k.py"
    assert main([cfg]) == 0
    out = capsys.readouterr().out
    assert "input 1x3x512x512" in out and "4,263,414" in out and "6.593" in out
    city = f"{ROOT}/configs/segnext/segnext_tiny_1024x1024_cityscapes_160k.py"
    assert main([city, "--shape", "1024", "2048", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["shape"] == [1024, 2048]
    assert r["params"] == {"backbone": 3_903_584, "decode_head": 326_163, "total": 4_229_747}
    assert abs(r["gflops"]["total"] - 50.54) < 0.01 * 50.54
