"""Iteration-based training: logging, atomic checkpoints, exact resume, periodic evaluation.

Everything random in an iteration is a function of ``(seed, iteration)``:
Jittor's RNG (drop path, dropout) is re-seeded every iteration, each sample's
augmentation comes from ``(seed, epoch, index)`` and its random streams (Ham bases)
from ``(seed, iteration, position in the global batch)``.  A resumed run therefore
continues exactly as if it had not stopped, and N processes with the same
global batch compute what one process would.
"""
import contextlib
import datetime
import json
import math
import os
import pickle
import re
import resource
import signal
import sys
import time

import numpy as np
import jittor as jt

from .. import __version__
from ..checkpoint import CheckpointError, load_checkpoint, load_state_dict, save_checkpoint, unwrap_checkpoint
from ..config import flatten
from ..datasets import build_dataset
from ..errors import Interrupted, UserError
from ..evaluation import evaluate, format_table
from ..models import build_segmentor
from ..models.random_streams import random_streams
from .. import dist
from .amp import parse_fp16, require_cuda, scaled_step
from .compile_watch import CompileWatch
from .optim import build_optimizer, load_optimizer_state, optimizer_state
from .schedule import build_lr_schedule
from .settings import check_training_config
from .warmup import warm_up


class TrainingStopped(RuntimeError):
    """Training cannot go on (a non-finite loss); the message says which checkpoint to go back to."""


class WorkDirConflict(UserError):
    """The work dir holds files of another run that this one would overwrite."""


# files a run writes in its work dir: iter_N.pkl, best_mIoU_iter_N.pkl, and their temporary names while writing
_CHECKPOINT = re.compile(r"^(?:best_mIoU_)?iter_(\d+)\.pkl$")
_PARTIAL = re.compile(r"^\.(?:best_mIoU_)?iter_\d+\.pkl\.tmp(\d+)$|^.+\.py\.tmp(\d+)$")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _memory_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fmt_time(seconds):
    return str(datetime.timedelta(seconds=int(seconds)))


class Logger:
    """Rank 0 prints and appends to ``work_dir/train.log`` (text) and ``train.log.json`` (one dict per line)."""

    def __init__(self, work_dir, name="train"):
        self.enabled = dist.is_main()
        self.text = os.path.join(work_dir, f"{name}.log") if work_dir else None
        self.json = os.path.join(work_dir, f"{name}.log.json") if work_dir else None

    def __call__(self, msg):
        if not self.enabled:
            return
        line = f"{datetime.datetime.now():%Y-%m-%d %H:%M:%S} {msg}"
        print(line, flush=True)
        if self.text:
            self._append(self.text, line + "\n")

    sinks = ()   # more receivers of record(): e.g. a TensorBoard writer (log_config.hooks)

    def record(self, entry):
        if self.enabled and self.json:
            self._append(self.json, json.dumps(entry) + "\n")
        if self.enabled:
            for sink in self.sinks:
                sink.record(entry)

    @staticmethod
    def _append(path, text):
        try:
            with open(path, "a") as f:
                f.write(text)
        except OSError as e:  # a full disk: name the file (a failed write's error names none)
            raise OSError(e.errno, f"cannot write the log ({e.strerror or e})", path) from e


class TensorboardSink:
    """mmcv's ``TensorboardLoggerHook``: every logged number as a TensorBoard scalar (``train/loss``,
    ``val/mIoU`` ...) through tensorboardX or torch's ``SummaryWriter``, whichever is installed."""

    @staticmethod
    def writer_class():
        """The ``SummaryWriter`` to use; ``UserError`` (one line) if neither package is installed."""
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserError("log_config.hooks: TensorboardLoggerHook needs tensorboardX (pip install "
                                "tensorboardX) or PyTorch's tensorboard; install one or remove the hook") from None
        return SummaryWriter

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.writer = self.writer_class()(log_dir)

    def record(self, entry):
        prefix = "val" if entry.get("mode") == "val" else "train"
        for k, v in entry.items():
            if k not in ("iter", "mode") and isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(f"{prefix}/{k}", v, entry["iter"])
        self.writer.flush()

    def close(self):
        self.writer.close()


class Runner:
    """Builds model, data, optimizer and schedule from a config and runs ``train()``.

    Before anything is built the config is checked (``settings.check_training_config``) and the
    work dir is prepared: partial files of killed runs are removed, and a run refuses to start
    where it would overwrite another run's checkpoints (``force=True`` allows it).  A run deletes
    only files it wrote itself, or the superseded best checkpoint of the run it continues in the
    same work dir.
    """

    def __init__(self, cfg, work_dir, seed=0, resume=None, log=None, force=False):
        check_training_config(cfg)
        self.cfg = cfg
        self.work_dir = work_dir
        self.seed = int(seed)
        self.force = bool(force)
        self.created = set()          # files this run wrote: the only ones it may replace or delete
        self.last_checkpoint = None   # (path, iteration) of the newest checkpoint to go back to
        self._inherited_best = None   # the best checkpoint of the run this one continues, in this work dir
        self.max_iters = int(cfg.runner["max_iters"])
        if dist.is_main():
            os.makedirs(work_dir, exist_ok=True)
        self.log = log or Logger(work_dir)
        # TensorBoard folders of log_config.hooks: checked now, opened by train() (nothing to undo if setup fails)
        self.tensorboard_dirs = [hook.get("log_dir") or os.path.join(work_dir, "tf_logs")
                                 for hook in (cfg.get("log_config") or {}).get("hooks") or []
                                 if hook.get("type") == "TensorboardLoggerHook" and dist.is_main()]
        if self.tensorboard_dirs:
            TensorboardSink.writer_class()
        raw = self._read_resume(resume) if resume else None
        start = int(raw[1]["iter"]) if raw else 0
        if raw and start >= self.max_iters:
            raise UserError(f"--resume {resume} is at iteration {start}, and runner.max_iters is {self.max_iters}: "
                            "nothing is left to train. To train longer, raise it "
                            "(--cfg-options runner.max_iters=N)")
        self._prepare_work_dir(start)
        jt.set_global_seed(self.seed)  # the initial weights; under MPI rank 0's are then broadcast
        self.model = build_segmentor(cfg.model)
        if resume is None:
            report = self.model.init_weights()
            if report is not None:
                self.log(f"loaded pretrained backbone weights:\n{report[0]}")
            if cfg.get("load_from"):
                report, _ = load_checkpoint(self.model, cfg.load_from, strict_hint=(
                    "load_from must fit the model; set load_from=None or give a matching checkpoint"))
                self.log(f"load_from {cfg.load_from}:\n{report}")
        elif cfg.get("load_from"):
            self.log(f"load_from {cfg.load_from} is not used: --resume restores every weight")
        dist.broadcast_model(self.model)
        data = cfg.data
        self.train_set = build_dataset(data.train)
        batch = data.get("batch_size")
        if batch is None:  # mmseg configs: samples_per_gpu per process
            batch = data["samples_per_gpu"] * dist.world_size()
        if batch % dist.world_size():
            raise UserError(f"data.batch_size: the global batch {batch} is not divisible by {dist.world_size()} "
                            "processes")
        self.train_set.set_loader(samples_per_gpu=batch // dist.world_size(),
                                  workers_per_gpu=data.get("workers_per_gpu", 2), shuffle=True, seed=self.seed,
                                  drop_last=True)
        self.batch = batch
        self.batches_per_epoch = self.train_set.num_samples() // batch
        if self.batches_per_epoch == 0:
            raise UserError(f"data.train has {self.train_set.num_samples()} samples, fewer than one batch of {batch}")
        self.val_set = build_dataset(data.val) if data.get("val") is not None else None
        self.optimizer = build_optimizer(self.model, cfg.optimizer)
        self.amp_dtype, self.scaler = parse_fp16(cfg.get("fp16"))
        if self.amp_dtype:
            require_cuda(self.amp_dtype)
        self.schedule = build_lr_schedule(cfg.lr_config, self.max_iters)
        self.iter = 0
        self.best = {"mIoU": -1.0, "path": None}
        if raw:
            self._apply_resume(resume, *raw)
        self.config_path = self._dump_config() if dist.is_main() else None  # once every check has passed

    # ------------------------------------------------------------------ work dir
    def _prepare_work_dir(self, start):
        """Remove partial files of killed runs; refuse to overwrite another run's checkpoints."""
        wd = self.work_dir
        names = os.listdir(wd) if os.path.isdir(wd) else []
        if dist.is_main():
            for name in names:
                m = _PARTIAL.match(name)
                if m and not _pid_alive(int(m.group(1) or m.group(2))):
                    os.remove(os.path.join(wd, name))
                    self.log(f"removed {name}: a partial file left by a killed run (process {m.group(1) or m.group(2)})")
        later = sorted((int(m.group(1)), n) for n in names if (m := _CHECKPOINT.match(n)) and int(m.group(1)) > start)
        if later and not self.force:
            iters = [n for _, n in later if n.startswith("iter_")]
            cont = f"to continue that run, --resume {os.path.join(wd, iters[-1])}; " if iters else ""
            raise WorkDirConflict(
                f"{wd} already holds checkpoints this run would overwrite: {', '.join(n for _, n in later[:6])}"
                f"{' ...' if len(later) > 6 else ''}. Choose another --work-dir; {cont}"
                "or pass --force to start over there, overwriting them")
        if later:
            self.log(f"--force: checkpoints of an earlier run in {wd} may be overwritten: "
                     + ", ".join(n for _, n in later))

    def _dump_config(self):
        """The resolved config as ``<config name>.py``; an existing different one is kept (a dated name is used)."""
        fname = getattr(self.cfg, "filename", None)
        name = os.path.basename(fname) if fname and fname.endswith(".py") else "config.py"
        path = os.path.join(self.work_dir, name)
        text = self.cfg.pretty_text()
        if os.path.exists(path):
            with open(path) as f:
                if f.read() == text:
                    return path
            stem = name[:-3]
            new = os.path.join(self.work_dir, f"{stem}.{time.strftime('%Y%m%d_%H%M%S')}.py")
            if os.path.exists(new):
                new = new[:-3] + f".{os.getpid()}.py"
            self.log(f"{path} holds another config (an earlier run's); this run's is written to {new}")
            path = new
        self.cfg.dump(path)
        self.created.add(os.path.abspath(path))
        return path

    def _may_delete(self, path):
        path = os.path.abspath(path)
        return path in self.created or path == self._inherited_best

    # ------------------------------------------------------------------ checkpoints
    def save(self, name):
        """Rank 0 writes ``work_dir/name`` atomically (model, optimizer moments, iteration, data position)."""
        if not dist.is_main():
            return None
        meta = {"iter": self.iter, "epoch": self.iter // self.batches_per_epoch,
                "batch_in_epoch": self.iter % self.batches_per_epoch, "seed": self.seed,
                "world_size": dist.world_size(), "best": self.best, "jseg_version": __version__,
                "config": self.cfg.pretty_text(), "config_dict": self.cfg.to_dict(),
                "train_samples": self.train_set.num_samples(),
                "global_batch": self.batch, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        path = os.path.join(self.work_dir, name)
        if self.scaler is not None:
            meta["loss_scaler"] = self.scaler.state_dict()
        save_checkpoint(path, self.model, meta=meta, optimizer=optimizer_state(self.optimizer))
        self.created.add(os.path.abspath(path))
        return path

    @staticmethod
    def _read_resume(path):
        if not os.path.isfile(path):
            raise CheckpointError(f"--resume: checkpoint not found: {path}")
        try:
            with open(path, "rb") as f:
                raw = pickle.load(f)
        except Exception as e:  # a .pth, a truncated or foreign file: pickle raises many kinds
            why = " ".join(str(e).split())
            raise CheckpointError(f"--resume {path}: cannot read it ({type(e).__name__}: {why}); expected a "
                                  "training checkpoint written by jseg (work_dirs/<run>/iter_N.pkl)") from e
        state, meta = unwrap_checkpoint(raw, path)
        opt = raw.get("optimizer")
        if opt is None or "iter" not in meta:
            raise CheckpointError(f"--resume {path} is not a training checkpoint (no optimizer state / iteration); "
                                  "to start from its weights, set load_from (--cfg-options load_from=PATH)")
        return state, meta, opt

    def _apply_resume(self, path, state, meta, opt):
        load_state_dict(self.model, state, strict=True, name=path, strict_hint=(
            "a training checkpoint must match its model exactly: resume with the config it was trained with"))
        try:
            load_optimizer_state(self.optimizer, opt)
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"--resume {path}: its optimizer state does not fit this config's optimizer ({e}); "
                                  "was optimizer.paramwise_cfg changed?") from e
        self.iter = int(meta["iter"])
        if self.scaler is not None and meta.get("loss_scaler"):
            self.scaler.load_state_dict(meta["loss_scaler"])
        self.seed = int(meta.get("seed", self.seed))
        self.train_set.seed = self.seed
        self.best = dict(meta.get("best", self.best))
        self.last_checkpoint = (path, self.iter)
        best_path = self.best.get("path")
        if best_path and os.path.dirname(os.path.abspath(best_path)) == os.path.abspath(self.work_dir):
            self._inherited_best = os.path.abspath(best_path)  # the same run, continued in its own work dir
        changed = []
        for what, old in (("train_samples", self.train_set.num_samples()), ("global_batch", self.batch)):
            if meta.get(what) is not None and int(meta[what]) != old:
                changed.append(f"{what.replace('_', ' ')} {meta[what]} -> {old}")
        if changed:
            msg = (f"--resume {path}: the data changed since it was written ({'; '.join(changed)}), so the data "
                   "order cannot continue where it stopped")
            if not self.force:
                raise UserError(msg + "; pass --force to resume anyway (a new order from this point)")
            self.log(f"warning: {msg}; continuing (--force)")
        self._report_config_changes(path, meta)
        self.log(f"resumed from {path} at iteration {self.iter} (seed {self.seed})")

    def _report_config_changes(self, path, meta):
        if meta.get("config_dict") is not None:
            old, new = flatten(meta["config_dict"]), flatten(self.cfg.to_dict())
            diff = [f"{k}: {old.get(k, '(absent)')!r} -> {new.get(k, '(absent)')!r}"
                    for k in sorted(set(old) | set(new)) if old.get(k, "(absent)") != new.get(k, "(absent)")]
            if diff:
                self.log(f"note: the config differs from the one {os.path.basename(path)} was trained with "
                         f"({len(diff)} setting(s)); this run uses the new values:\n  "
                         + "\n  ".join(diff[:30]) + ("\n  ..." if len(diff) > 30 else ""))
        elif meta.get("config") and meta["config"] != self.cfg.pretty_text():
            self.log(f"note: the config differs from the one {os.path.basename(path)} was trained with; "
                     "this run uses the new one")

    def _where_to_go_back(self):
        if self.last_checkpoint is None:
            return "no checkpoint was written by this run yet"
        path, it = self.last_checkpoint
        return f"the last checkpoint is {path} (iteration {it}); continue with --resume {path}"

    # ------------------------------------------------------------------ loop
    def _batches(self):
        self.train_set.set_epoch(*divmod(self.iter, self.batches_per_epoch))
        while True:
            yield from self.train_set

    def _mixed_precision(self):
        """Jittor's auto mixed precision while the step's graph is built (``fp16`` configs, CUDA only)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return jt.flag_scope(auto_mixed_precision_level=5)

    def _step(self, batch, local):
        """One training iteration (forward, loss, backward, optimizer step) at ``self.iter``; its log values."""
        jt.set_seed(self.seed * 1000003 + self.iter)
        self.schedule.apply(self.optimizer, self.iter)
        # stream 0: training; j = position in the global batch
        with random_streams([(self.seed, 0, self.iter, dist.rank() * local + j) for j in range(local)]), \
                self._mixed_precision():
            img = batch["img"] if self.amp_dtype is None else batch["img"].cast(self.amp_dtype)
            losses = self.model.forward_train(img, batch["gt_semantic_seg"])
            loss, log_vars = self.model.parse_losses(losses)
            if not all(math.isfinite(v) for v in log_vars.values()):
                raise TrainingStopped(f"non-finite loss at iteration {self.iter + 1}: {log_vars}; stopping "
                                      f"({self._where_to_go_back()})")
            if self.scaler is not None:
                scaled_step(self.optimizer, loss, self.scaler)   # skipped if a gradient overflowed
                log_vars["loss_scale"] = self.scaler.scale
            else:
                self.optimizer.step(loss)
        # Materialise the whole training state (weights, moments, BN statistics) at every step: Jittor
        # evaluates lazily, and kernels fused across a step boundary round differently from the same
        # ops on stored arrays, so without this a resumed run (which starts from stored arrays) would
        # drift from the uninterrupted one.
        jt.sync_all()
        return log_vars

    def compile_kernels(self, iterations=2):
        """Run what training compiles, and keep nothing: ``iterations`` steps on the first batches and an
        inference of the first validation image (``jseg.engine.warmup`` calls this in a scratch process)."""
        self.model.train()
        batches = self._batches()
        try:
            for _ in range(iterations):
                self._step(next(batches), self.batch // dist.world_size())
                self.iter += 1
        finally:
            batches.close()
            self.train_set.close()
        if self.val_set is not None and self.val_set.num_samples():
            self.model.eval()
            sample = self.val_set.get_sample(0, np.random.default_rng([self.seed, 0]))
            gt = self.val_set.get_gt_seg_map(0)
            self.model.infer_test_sample(sample, gt.shape[:2], sample_key=(self.seed, 1, 0))
            jt.sync_all()

    def train(self, until=None):
        """Train to ``max_iters`` (or stop at iteration ``until``, writing a checkpoint there)."""
        cfg = self.cfg
        stop = self.max_iters if until is None else min(int(until), self.max_iters)
        log_every = cfg.get("log_config", {}).get("interval", 50)
        ckpt_every = (cfg.get("checkpoint_config") or {}).get("interval", self.max_iters)
        eval_every = (cfg.get("evaluation") or {}).get("interval", 0)
        self.log(f"training {self.max_iters} iterations, global batch {self.batch} on {dist.world_size()} "
                 f"process(es), seed {self.seed}, work_dir {self.work_dir}")
        self.model.train()
        local = self.batch // dist.world_size()
        t_start, t_last, n_last = time.time(), time.time(), self.iter
        first = True
        batches = self._batches()
        # the first iterations of a new model compile its kernels: say so
        watch = CompileWatch(self.log, self.log.text, enabled=self.log.enabled).__enter__()
        try:
            warm_up(self, self.log)
            self.log.sinks = tuple(TensorboardSink(d) for d in self.tensorboard_dirs)
            while self.iter < stop:
                log_vars = self._step(next(batches), local)
                self.iter += 1
                log_now = self.iter % log_every == 0 or self.iter == self.max_iters
                if first and not log_now:
                    # the first iteration of a process compiles most kernels (minutes on a fresh machine): the
                    # speed and ETA of the first log line are measured from its end
                    t_last, n_last = time.time(), self.iter
                first = False
                if log_now:
                    now = time.time()
                    per_it = (now - t_last) / max(self.iter - n_last, 1)
                    eta = per_it * (self.max_iters - self.iter)
                    lr = self.optimizer.param_groups[0]["lr"]
                    self.log(f"iter {self.iter}/{self.max_iters}  lr {lr:.3e}  "
                             + "  ".join(f"{k} {v:.4f}" for k, v in log_vars.items())
                             + f"  {per_it:.3f} s/it  ETA {_fmt_time(eta)}  mem {_memory_mb():.0f} MB")
                    self.log.record({"iter": self.iter, "lr": lr, **log_vars, "time": per_it})
                    t_last, n_last = now, self.iter
                # evaluation first: a checkpoint of the same iteration then records the best so far, this one included
                if self.val_set is not None and eval_every and (self.iter % eval_every == 0
                                                                or self.iter == self.max_iters):
                    self.run_eval()
                if self.iter % ckpt_every == 0 or self.iter in (self.max_iters, stop):
                    path = self.save(f"iter_{self.iter}.pkl")
                    self.last_checkpoint = (path or os.path.join(self.work_dir, f"iter_{self.iter}.pkl"), self.iter)
                    if path:
                        self.log(f"saved checkpoint {path}")
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM (jseg.tools install the handlers)
            signum = getattr(e, "signum", signal.SIGINT)
            raise Interrupted(signum, f"training stopped at iteration {self.iter}; {self._where_to_go_back()}") \
                from None
        finally:  # stops the workers and frees the batches loaded ahead, also when training stops with an error
            watch.__exit__(*sys.exc_info())
            for sink in self.log.sinks:
                sink.close()
            self.log.sinks = ()
            batches.close()
            self.train_set.close()
        self.log(f"training done in {_fmt_time(time.time() - t_start)}")
        return self.best

    def eval_metrics(self):
        """``evaluation.metric`` as a list, mIoU always first (the best checkpoint follows it)."""
        asked = (self.cfg.get("evaluation") or {}).get("metric", "mIoU")
        asked = [asked] if isinstance(asked, str) else list(asked)
        return ["mIoU"] + [m for m in asked if m != "mIoU"]

    def run_eval(self):
        result = evaluate(self.model, self.val_set, seed=self.seed, log=self.log, metrics=self.eval_metrics())
        self.log(f"evaluation at iteration {self.iter}:\n" + format_table(result, self.val_set.CLASSES))
        means = {k: float(v) for k, v in result.items() if k == "aAcc" or (k.startswith("m") and np.ndim(v) == 0)}
        self.log.record({"iter": self.iter, "mode": "val", **means})
        if result["mIoU"] > self.best["mIoU"]:
            old = self.best.get("path")
            self.best = {"mIoU": float(result["mIoU"]), "iter": self.iter,
                         "path": os.path.join(self.work_dir, f"best_mIoU_iter_{self.iter}.pkl")}
            self.save(os.path.basename(self.best["path"]))
            if dist.is_main() and old and os.path.abspath(old) != os.path.abspath(self.best["path"]) \
                    and os.path.exists(old):
                if self._may_delete(old):
                    os.remove(old)
                else:
                    self.log(f"kept the previous best checkpoint {old}: another run wrote it")
        return result
