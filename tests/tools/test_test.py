"""python -m jseg.tools.test and scripts/test.sh: --no-strict (the loading hint names it, and it is accepted),
--show-dir never overwrites another run's predictions, user errors are one line with status 2."""
import os
import subprocess
import sys

import pytest

from jseg.apis import init_model
from jseg.checkpoint import model_state_dict, save_checkpoint
from jseg.datasets import make_toy_dataset
from jseg.tools import test as test_tool
from tests.helpers import ROOT

CONFIG = f"{ROOT}/configs/quickstart/segnext_toy.py"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("test_tool")
    toy = make_toy_dataset(str(d / "toy"), n_train=2, n_val=2, size=32)
    sd = model_state_dict(init_model(CONFIG))
    full = save_checkpoint(str(d / "full.pkl"), state_dict=sd)
    del sd["decode_head.conv_seg.bias"]
    partial = save_checkpoint(str(d / "partial.pkl"), state_dict=sd)
    return toy, full, partial


def _opts(toy):
    return ["--cfg-options", f"data.test.data_root={toy}"]


def test_the_strict_hint_is_true_for_the_test_tool(setup, tmp_path, capsys):
    toy, full, partial = setup
    assert test_tool.main([CONFIG, partial] + _opts(toy)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing keys (1): decode_head.conv_seg.bias" in err[0]
    assert "pass --no-strict to load the matching keys anyway" in err[0]
    assert test_tool.main([CONFIG, partial, "--no-strict"] + _opts(toy)) == 0
    out = capsys.readouterr().out
    assert "missing keys (1): decode_head.conv_seg.bias" in out and "Summary: aAcc" in out


def test_test_sh_accepts_no_strict(setup):
    """The hint used to tell test.sh users to pass --no-strict, which test.sh rejected."""
    toy, _, partial = setup
    r = subprocess.run(["bash", "scripts/test.sh", CONFIG, partial, "--no-strict"] + _opts(toy), cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "Summary: aAcc" in r.stdout


def test_show_dir_is_not_overwritten_unless_forced(setup, tmp_path, capsys):
    toy, full, _ = setup
    show = tmp_path / "show"
    assert test_tool.main([CONFIG, full, "--show-dir", str(show)] + _opts(toy)) == 0
    written = sorted(os.listdir(show))
    assert len(written) == 2
    stamp = (show / written[0]).stat().st_mtime_ns
    capsys.readouterr()
    assert test_tool.main([CONFIG, full, "--show-dir", str(show)] + _opts(toy)) == 2
    assert "already holds 2 of the predictions" in capsys.readouterr().err
    assert (show / written[0]).stat().st_mtime_ns == stamp
    assert test_tool.main([CONFIG, full, "--show-dir", str(show), "--force"] + _opts(toy)) == 0


def test_user_errors_are_one_line(setup, tmp_path, capsys):
    toy, full, _ = setup
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    for argv, message in [([str(tmp_path / "none.py"), full], "config file not found"),
                          ([CONFIG, str(tmp_path / "none.pkl")], "checkpoint not found"),
                          ([CONFIG, str(garbage)], f"cannot read checkpoint {garbage}"),
                          ([CONFIG, full, "--cfg-options", "data.test.data_rot=x"], "did you mean")]:
        assert test_tool.main(argv + (_opts(toy) if "--cfg-options" not in argv else [])) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("test: ") and message in err[0], err
    r = subprocess.run([sys.executable, "-m", "jseg.tools.test", CONFIG, str(garbage), "--debug"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_eval_chooses_the_metrics(setup, capsys):
    toy, full, _ = setup
    assert test_tool.main([CONFIG, full, "--eval", "mDice", "mFscore"] + _opts(toy)) == 0
    out = capsys.readouterr().out
    assert "| Dice  | Fscore | Precision | Recall |" in out and "mDice" in out and "mIoU" not in out
    assert test_tool.main([CONFIG, full] + _opts(toy) + ["evaluation.metric=mAP"]) == 2
    assert "evaluation.metric: metric(s) ['mAP'] not supported" in capsys.readouterr().err
