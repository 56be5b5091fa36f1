"""python -m jseg.tools.plot_log: curves from train.log.json to a PNG; bad input is one line, status 2."""
import json
import math

import numpy as np
from PIL import Image

from jseg.tools import plot_log


def _log(tmp_path, val=True):
    with open(tmp_path / "train.log.json", "w") as f:
        for it in range(10, 210, 10):
            f.write(json.dumps({"iter": it, "lr": 0.002 * (1 - it / 200), "loss": 2 * math.exp(-it / 80)}) + "\n")
            if val and it % 100 == 0:
                f.write(json.dumps({"iter": it, "mode": "val", "aAcc": 0.9, "mIoU": 0.5 + it / 1000}) + "\n")
    return tmp_path


def test_default_panels_and_points(tmp_path, capsys):
    wd = _log(tmp_path)
    assert plot_log.main([str(wd)]) == 0
    assert "loss: 20 points, lr: 20 points, mIoU: 2 points" in capsys.readouterr().out
    img = Image.open(wd / "curves.png").convert("RGB")
    assert img.size == (plot_log.PANEL_W, 3 * plot_log.PANEL_H + 24)
    colours = set(map(tuple, np.asarray(img).reshape(-1, 3).tolist()))
    assert all(c in colours for c in plot_log.COLOURS[:3])          # each panel drew its curve
    assert sorted(p.name for p in wd.iterdir()) == ["curves.png", "train.log.json"]   # no temp file left


def test_series_split_train_and_val(tmp_path):
    train, val = plot_log.read_log(str(_log(tmp_path)))
    assert plot_log.series(train, val, "mIoU") == [(100, 0.6), (200, 0.7)]
    assert plot_log.series(train, val, "loss")[0] == (10, 2 * math.exp(-10 / 80))
    assert plot_log._nice_ticks(0.0, 1.75)[-1] >= 1.75                # the top value stays inside the panel


def test_bad_input_is_one_line(tmp_path, capsys):
    assert plot_log.main([str(tmp_path / "nowhere")]) == 2
    assert "no training log here" in capsys.readouterr().err
    wd = _log(tmp_path, val=False)
    assert plot_log.main([str(wd), "--keys", "mIoU"]) == 2
    err = capsys.readouterr().err
    assert "the log has no mIoU" in err and "it has: loss, lr" in err and len(err.strip().splitlines()) == 1
    assert plot_log.main([str(wd)]) == 0 and plot_log.main([str(wd)]) == 2     # never replaces unasked
    assert "exists; pass --force" in capsys.readouterr().err
    assert plot_log.main([str(wd), "--force"]) == 0
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "train.log.json").write_text("")
    assert plot_log.main([str(tmp_path / "empty")]) == 2 and "the log is empty" in capsys.readouterr().err
