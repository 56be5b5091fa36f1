"""Runner: exact resume, atomic checkpoints under SIGKILL, NaN stop, evaluation table."""
import os
import subprocess
import sys

import numpy as np
import pytest

import jseg.engine.runner as runner_module
from jseg.checkpoint import CheckpointError, read_checkpoint
from jseg.datasets import make_toy_dataset
from jseg.engine.runner import Runner, TrainingStopped, WorkDirConflict
from jseg.errors import UserError
from tests.engine.train_helpers import tiny_cfg
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(str(tmp_path_factory.mktemp("rt") / "toy"), n_train=8, n_val=2, size=32)


def _losses(work_dir):
    import json
    with open(os.path.join(work_dir, "train.log.json")) as f:
        return [json.loads(line)["loss"] for line in f if '"loss"' in line]


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_continues_exactly(toy, tmp_path, workers):
    """Bit for bit: every parameter, moment-driven update and BN statistic equals the uninterrupted run's.

    It used to differ by up to 6.3e-4 (patch_embed4.norm.running_var): Jittor evaluates lazily, so the kernels of
    a step were fused with the pending updates of the previous one unless something (a checkpoint save, a
    resume's load) had materialised them, and fused kernels round differently.  The runner now materialises
    the training state at the end of every step.
    """
    k = 3   # 2 batches of 4 per epoch: the resume point is inside the second epoch
    straight = Runner(tiny_cfg(toy, max_iters=2 * k, norm="BN", workers=workers), str(tmp_path / "a"), seed=5)
    straight.train()
    first = Runner(tiny_cfg(toy, max_iters=2 * k, norm="BN", workers=workers), str(tmp_path / "b"), seed=5)
    first.train(until=k)                           # as if stopped after the checkpoint at iteration k
    second = Runner(tiny_cfg(toy, max_iters=2 * k, norm="BN", workers=workers), str(tmp_path / "b"), seed=0,
                    resume=str(tmp_path / "b" / f"iter_{k}.pkl"))
    assert second.iter == k and second.seed == 5
    second.train()
    la, lb = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert len(la) == len(lb) == 2 * k and la == lb
    a, _ = read_checkpoint(str(tmp_path / "a" / f"iter_{2 * k}.pkl"))
    b, _ = read_checkpoint(str(tmp_path / "b" / f"iter_{2 * k}.pkl"))
    assert list(a) == list(b)
    differ = [key for key in a if not np.array_equal(a[key], b[key])]
    assert not differ, differ


def test_resume_refuses_a_weights_only_checkpoint(toy, tmp_path):
    from jseg.checkpoint import save_checkpoint
    r = Runner(tiny_cfg(toy, max_iters=1, norm="BN"), str(tmp_path / "w"))
    path = save_checkpoint(str(tmp_path / "w" / "weights.pkl"), r.model)
    with pytest.raises(CheckpointError, match="weights.pkl is not a training checkpoint.*load_from"):
        Runner(tiny_cfg(toy, max_iters=1, norm="BN"), str(tmp_path / "w"), resume=path)
    garbage = tmp_path / "w" / "garbage.pkl"
    garbage.write_bytes(b"\x80\x04 not a pickle")           # was a bare UnpicklingError, the file not named
    with pytest.raises(CheckpointError, match=r"--resume .*garbage\.pkl: cannot read it \(UnpicklingError"):
        Runner(tiny_cfg(toy, max_iters=1, norm="BN"), str(tmp_path / "w"), resume=str(garbage))


def test_nan_loss_stops_and_names_the_last_checkpoint(toy, tmp_path):
    cfg = tiny_cfg(toy, max_iters=2, norm="BN")
    r = Runner(cfg, str(tmp_path / "n"))
    r.train()
    good = str(tmp_path / "n" / "iter_2.pkl")
    before = read_checkpoint(good)[0]
    cfg.runner["max_iters"] = 4
    r2 = Runner(cfg, str(tmp_path / "n"), resume=good)
    r2.model.decode_head.conv_seg.bias.update(r2.model.decode_head.conv_seg.bias * float("nan"))
    with pytest.raises(TrainingStopped, match=r"non-finite loss at iteration 3.*the last checkpoint is "
                                              r".*n/iter_2\.pkl \(iteration 2\)"):
        r2.train()
    after = read_checkpoint(good)[0]
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert not os.path.exists(str(tmp_path / "n" / "iter_4.pkl"))
    # no checkpoint yet: the message does not claim one ("the last checkpoint is intact" used to)
    r3 = Runner(tiny_cfg(toy, max_iters=2, norm="BN"), str(tmp_path / "m"))
    r3.model.decode_head.conv_seg.bias.update(r3.model.decode_head.conv_seg.bias * float("nan"))
    with pytest.raises(TrainingStopped, match="iteration 1.*no checkpoint was written by this run yet"):
        r3.train()


def test_evaluation_table_and_best_checkpoint(toy, tmp_path):
    r = Runner(tiny_cfg(toy, max_iters=2, norm="BN", eval_interval=1), str(tmp_path / "e"))
    best = r.train()
    assert 0 <= best["mIoU"] <= 1 and os.path.exists(best["path"])
    assert len([f for f in os.listdir(tmp_path / "e") if f.startswith("best_mIoU")]) == 1
    log = open(tmp_path / "e" / "train.log").read()
    assert "| Class" in log and "Summary: aAcc" in log and "| disc" in log


@pytest.fixture
def rising_miou(monkeypatch):
    """Evaluation that improves every time it runs, so every evaluation writes a new best checkpoint."""
    scores = iter(np.linspace(0.1, 0.9, 50))

    def fake_evaluate(model, dataset, seed=0, log=None, show_dir=None, metrics=("mIoU",)):
        v = float(next(scores))
        return {"aAcc": v, "mIoU": v, "mAcc": v, "IoU": np.full(6, v), "Acc": np.full(6, v)}
    monkeypatch.setattr(runner_module, "evaluate", fake_evaluate)


def test_resuming_into_a_new_work_dir_never_deletes_the_old_runs_files(toy, tmp_path, rising_miou):
    """Data loss found by the probe: the old run's best_mIoU_iter_2.pkl was deleted by the resumed run."""
    a, b = tmp_path / "a", tmp_path / "b"
    Runner(tiny_cfg(toy, max_iters=2, norm="BN", eval_interval=1), str(a)).train()
    old_best = a / "best_mIoU_iter_2.pkl"
    assert old_best.exists() and not (a / "best_mIoU_iter_1.pkl").exists()   # its own earlier best: replaced
    snapshot = {f: (a / f).read_bytes() for f in os.listdir(a) if f.endswith(".pkl")}
    r = Runner(tiny_cfg(toy, max_iters=4, norm="BN", eval_interval=1), str(b), resume=str(a / "iter_2.pkl"))
    r.train()
    assert {f: (a / f).read_bytes() for f in os.listdir(a) if f.endswith(".pkl")} == snapshot
    assert sorted(f for f in os.listdir(b) if f.startswith("best")) == ["best_mIoU_iter_4.pkl"]
    assert f"kept the previous best checkpoint {old_best}" in (b / "train.log").read_text()
    # continuing in its own work dir, the run replaces its superseded best, as an uninterrupted run would
    Runner(tiny_cfg(toy, max_iters=4, norm="BN", eval_interval=1), str(a), resume=str(a / "iter_2.pkl")).train()
    assert sorted(f for f in os.listdir(a) if f.startswith("best")) == ["best_mIoU_iter_4.pkl"]


def test_a_new_run_refuses_to_overwrite_another_runs_checkpoints(toy, tmp_path):
    wd = tmp_path / "w"
    Runner(tiny_cfg(toy, max_iters=2, norm="BN"), str(wd)).train()
    ckpt = wd / "iter_2.pkl"
    before = ckpt.read_bytes()
    with pytest.raises(WorkDirConflict, match=r"already holds checkpoints this run would overwrite: iter_2\.pkl.*"
                                              r"--resume .*iter_2\.pkl.*--force"):
        Runner(tiny_cfg(toy, max_iters=2, norm="BN"), str(wd))
    assert ckpt.read_bytes() == before
    # resuming from iteration 1 would overwrite iteration 2 too
    Runner(tiny_cfg(toy, max_iters=2, norm="BN"), str(tmp_path / "x")).train(until=1)
    (tmp_path / "x" / "iter_2.pkl").write_bytes(before)
    with pytest.raises(WorkDirConflict, match="iter_2.pkl"):
        Runner(tiny_cfg(toy, max_iters=2, norm="BN"), str(tmp_path / "x"), resume=str(tmp_path / "x" / "iter_1.pkl"))
    Runner(tiny_cfg(toy, max_iters=2, norm="BN"), str(wd), force=True).train()   # asked for: allowed
    assert "--force: checkpoints of an earlier run" in (wd / "train.log").read_text()


def test_resume_past_max_iters_is_refused(toy, tmp_path):
    Runner(tiny_cfg(toy, max_iters=2, norm="BN"), str(tmp_path / "w")).train()
    with pytest.raises(UserError, match=r"iter_2\.pkl is at iteration 2, and runner.max_iters is 1: nothing is "
                                        r"left to train.*runner.max_iters=N"):
        Runner(tiny_cfg(toy, max_iters=1, norm="BN"), str(tmp_path / "w"), resume=str(tmp_path / "w" / "iter_2.pkl"))


def test_a_pretrained_backbone_that_does_not_fit_says_how_to_go_on(toy, tmp_path):
    from jseg.checkpoint import save_checkpoint
    bad = save_checkpoint(str(tmp_path / "mscan.pkl"), state_dict={"patch_embed1.proj.0.weight": np.zeros((1, 1))})
    cfg = tiny_cfg(toy, max_iters=1, norm="BN")
    cfg.model.backbone["init_cfg"] = dict(type="Pretrained", checkpoint=bad)
    with pytest.raises(CheckpointError, match=r"(?s)mscan\.pkl does not match the model.*--cfg-options "
                                              r"model\.backbone\.init_cfg=None"):
        Runner(cfg, str(tmp_path / "w"))


def test_partial_files_of_a_killed_run_are_removed_and_live_ones_kept(toy, tmp_path):
    wd = tmp_path / "w"
    wd.mkdir()
    dead = wd / ".iter_4.pkl.tmp4194999"             # above any pid_max: a process that cannot exist
    live = wd / f".iter_4.pkl.tmp{os.getpid()}"
    other = wd / "notes.tmp4194999"
    for f in (dead, live, other):
        f.write_bytes(b"partial")
    Runner(tiny_cfg(toy, max_iters=1, norm="BN"), str(wd))
    assert not dead.exists() and live.exists() and other.exists()
    assert "removed .iter_4.pkl.tmp4194999: a partial file left by a killed run" in (wd / "train.log").read_text()


def test_resume_when_the_data_or_the_config_changed(tmp_path):
    toy8 = make_toy_dataset(str(tmp_path / "toy8"), n_train=8, n_val=2, size=32)
    toy6 = make_toy_dataset(str(tmp_path / "toy6"), n_train=6, n_val=2, size=32)
    wd = tmp_path / "w"
    Runner(tiny_cfg(toy8, max_iters=4, norm="BN"), str(wd)).train(until=2)
    ckpt = str(wd / "iter_2.pkl")
    with pytest.raises(UserError, match=r"the data changed since it was written \(train samples 8 -> 6\).*--force"):
        Runner(tiny_cfg(toy6, max_iters=4, norm="BN"), str(wd), resume=ckpt)
    r = Runner(tiny_cfg(toy6, max_iters=4, norm="BN"), str(wd), resume=ckpt, force=True)
    assert r.iter == 2
    log = (wd / "train.log").read_text()
    assert "warning: --resume" in log and "continuing (--force)" in log
    # a changed setting is listed (the run uses the new value); the first run's dumped config is kept
    cfg = tiny_cfg(toy8, max_iters=4, norm="BN")
    cfg.optimizer["lr"] = 0.5
    dumped = [f for f in os.listdir(wd) if f.endswith(".py")]
    Runner(cfg, str(wd), resume=ckpt)
    log = (wd / "train.log").read_text()
    assert "the config differs from the one iter_2.pkl was trained with" in log and "optimizer.lr: 0.002 -> 0.5" in log
    assert len([f for f in os.listdir(wd) if f.endswith(".py")]) == len(dumped) + 1


KILL_SCRIPT = r"""
import pickle, sys, time, numpy as np, jseg
import jseg.checkpoint as ck
from jseg.checkpoint import save_checkpoint
big = {f"w{i}": np.full((256, 1024), i, np.float32) for i in range(24)}   # ~25 MB per write
if sys.argv[2] == "mid":   # the second write stops halfway through the temporary file and says so
    save_checkpoint(sys.argv[1], state_dict=big, meta={"n": 1})
    class HalfWay:
        @staticmethod
        def dump(obj, f, protocol):
            data = pickle.dumps(obj, protocol=protocol)
            f.write(data[: len(data) // 2])
            f.flush()
            print("MID_WRITE", flush=True)
            time.sleep(300)
    ck.pickle = HalfWay
    save_checkpoint(sys.argv[1], state_dict=big, meta={"n": 2})
i = 0
while True:
    i += 1
    save_checkpoint(sys.argv[1], state_dict=big, meta={"n": i})
    print(i, flush=True)
"""


def _kill_writer(script, path, when):
    # the writer is killed by a shell, not by this process: once Jittor is imported, a child of this
    # process dying of a signal trips Jittor's SIGCHLD handler, which ends the test run
    if when == "mid":
        wait = f'while ! grep -q MID_WRITE "{path}.out" 2>/dev/null; do sleep 0.01; done'
    else:
        wait = f'while [ ! -f "{path}" ]; do sleep 0.01; done; sleep {when}'
    shell = (f'"{sys.executable}" "{script}" "{path}" {"mid" if when == "mid" else "loop"} > "{path}.out" & '
             f'pid=$!; {wait}; kill -9 $pid; wait $pid; true')
    r = subprocess.run(["bash", "-c", shell], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_sigkill_during_checkpoint_write_leaves_a_loadable_file(tmp_path):
    path = str(tmp_path / "ckpt.pkl")
    script = tmp_path / "writer.py"
    script.write_text(KILL_SCRIPT)
    # a kill certainly inside a write: the temporary file is half written, the checkpoint is the previous one
    _kill_writer(script, path, "mid")
    sd, meta = read_checkpoint(path)
    assert meta["n"] == 1 and len(sd) == 24 and float(sd["w23"][0, 0]) == 23.0
    partial = [f for f in os.listdir(tmp_path) if f.startswith(".ckpt.pkl.tmp")]
    assert len(partial) == 1 and 0 < os.path.getsize(tmp_path / partial[0]) < os.path.getsize(path)
    os.remove(tmp_path / partial[0])
    # kills at arbitrary moments of a write loop: whatever the moment, never a torn file
    for delay in (0.05, 0.13, 0.31, 0.02):
        _kill_writer(script, path, delay)
        sd, meta = read_checkpoint(path)
        assert meta["n"] >= 1 and len(sd) == 24 and float(sd["w23"][0, 0]) == 23.0


def test_loss_scaled_training_saves_and_resumes_its_scaler(toy, tmp_path, monkeypatch):
    """The fp16 path's bookkeeping, run in float32 on the CPU (the half-precision forward needs CUDA): a fixed
    power-of-two scale gives exactly the plain run's weights; the scaler state goes into checkpoints and
    comes back with --resume."""
    monkeypatch.setattr(runner_module, "require_cuda", lambda dtype: None)
    plain = Runner(tiny_cfg(toy, max_iters=2, norm="BN"), str(tmp_path / "plain"), seed=1)
    plain.train()
    cfg = tiny_cfg(toy, max_iters=2, norm="BN")
    cfg.fp16 = dict(loss_scale=128.0)
    scaled = Runner(cfg, str(tmp_path / "scaled"), seed=1)
    assert scaled.amp_dtype == "float16" and scaled.scaler.scale == 128.0 and not scaled.scaler.dynamic
    scaled.amp_dtype = None   # keep the CPU in float32: the scaled step is what is tested
    scaled.train()
    a, _ = read_checkpoint(str(tmp_path / "plain" / "iter_2.pkl"))
    b, meta = read_checkpoint(str(tmp_path / "scaled" / "iter_2.pkl"))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert meta["loss_scaler"] == {"scale": 128.0, "good_steps": 2, "skipped": 0, "dynamic": False}
    log = open(tmp_path / "scaled" / "train.log").read()
    assert "loss_scale 128.0000" in log
    cfg4 = tiny_cfg(toy, max_iters=4, norm="BN")
    cfg4.fp16 = dict(loss_scale="dynamic")
    resumed = Runner(cfg4, str(tmp_path / "scaled"), resume=str(tmp_path / "scaled" / "iter_2.pkl"))
    assert (resumed.scaler.scale, resumed.scaler.good_steps) == (128.0, 2)


def test_evaluation_with_every_metric(toy, tmp_path):
    import json
    cfg = tiny_cfg(toy, max_iters=1, norm="BN", eval_interval=1)
    cfg.evaluation.metric = ["mDice", "mFscore"]
    r = Runner(cfg, str(tmp_path / "m"))
    assert r.eval_metrics() == ["mIoU", "mDice", "mFscore"]        # mIoU kept: the best checkpoint follows it
    r.train()
    log = open(tmp_path / "m" / "train.log").read()
    assert "| Class" in log and "Fscore | Precision | Recall |" in log and "mDice" in log and "mRecall" in log
    val = [json.loads(x) for x in open(tmp_path / "m" / "train.log.json") if '"val"' in x][-1]
    assert {"aAcc", "mIoU", "mAcc", "mDice", "mFscore", "mPrecision", "mRecall"} <= set(val)


def test_tensorboard_hook_writes_every_logged_number(toy, tmp_path, monkeypatch):
    import types

    scalars, closed = [], []

    class FakeWriter:            # tensorboardX's SummaryWriter interface, recording the calls
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, tag, value, step):
            scalars.append((tag, step))

        def flush(self):
            pass

        def close(self):
            closed.append(self.log_dir)

    monkeypatch.setitem(sys.modules, "tensorboardX", types.SimpleNamespace(SummaryWriter=FakeWriter))
    cfg = tiny_cfg(toy, max_iters=2, norm="BN", eval_interval=2)
    cfg.log_config.hooks = [dict(type="TextLoggerHook", by_epoch=False), dict(type="TensorboardLoggerHook")]
    Runner(cfg, str(tmp_path / "tb")).train()
    assert ("train/loss", 1) in scalars and ("train/lr", 2) in scalars and ("val/mIoU", 2) in scalars
    assert closed == [str(tmp_path / "tb" / "tf_logs")]


def test_tensorboard_hook_without_a_writer_is_one_clear_error(toy, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    monkeypatch.setitem(sys.modules, "torch", None)
    cfg = tiny_cfg(toy, max_iters=1, norm="BN")
    cfg.log_config.hooks = [dict(type="TensorboardLoggerHook")]
    with pytest.raises(UserError, match="TensorboardLoggerHook needs tensorboardX"):
        Runner(cfg, str(tmp_path / "tb"))
    cfg.log_config.hooks = [dict(type="WandbLoggerHook")]
    with pytest.raises(Exception, match="'WandbLoggerHook' hook"):
        Runner(cfg, str(tmp_path / "tb2"))
