"""Iteration-based training: logging, atomic checkpoints, exact resume, periodic evaluation.

Everything random in an iteration is a function of ``(seed, iteration)``:
Jittor's RNG (drop path, dropout) is re-seeded every iteration, each sample's
augmentation comes from ``(seed, epoch, index)`` and its Ham bases from
``(seed, iteration, position in the global batch)``.  A resumed run therefore
continues exactly as if it had not stopped, and N processes with the same
global batch compute what one process would.
"""
import datetime
import json
import math
import os
import pickle
import resource
import time

import numpy as np
import jittor as jt

from .. import __version__
from ..checkpoint import load_state_dict, save_checkpoint, unwrap_checkpoint
from ..datasets import build_dataset
from ..evaluation import confusion_areas, format_table, summarize
from ..models import build_segmentor
from . import dist
from .optim import build_optimizer, load_optimizer_state, optimizer_state
from .schedule import build_lr_schedule


class TrainingStopped(RuntimeError):
    pass


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
            with open(self.text, "a") as f:
                f.write(line + "\n")

    def record(self, entry):
        if self.enabled and self.json:
            with open(self.json, "a") as f:
                f.write(json.dumps(entry) + "\n")


def evaluate(model, dataset, seed=0, log=None, show_dir=None):
    """Sharded evaluation: rank r takes images r, r+W, ...; histograms are summed over ranks.

    Returns ``summarize`` of the dataset (identical on every rank and for any number of ranks).
    """
    was_training = model.is_training()
    model.eval()
    num_classes = len(dataset.CLASSES)
    areas = np.zeros((3, num_classes), np.int64)
    indices = list(range(dist.rank(), dataset.num_samples(), dist.world_size()))
    t0 = time.time()
    for n, idx in enumerate(indices, 1):
        sample = dataset.get_sample(idx, np.random.default_rng([seed, idx]))
        gt = dataset.get_gt_seg_map(idx)
        prob = model.infer_test_sample(sample, gt.shape[:2], nmf_key=(seed, 1, idx))  # stream 1: evaluation
        pred = np.argmax(prob, axis=0)
        areas += confusion_areas(pred, gt, num_classes, dataset.ignore_index)
        if show_dir:
            from ..visualization import save_colored
            save_colored(os.path.join(show_dir, os.path.splitext(dataset.img_infos[idx]["filename"])[0] + ".png"),
                         pred, dataset.PALETTE)
        if log and dist.is_main() and (n == len(indices) or n % 50 == 0):
            log(f"eval {n}/{len(indices)} (this rank) {time.time() - t0:.1f} s")
    if was_training:
        model.train()
    return summarize(dist.all_reduce_sum(areas).astype(np.int64))


class Runner:
    """Builds model, data, optimizer and schedule from a config and runs ``train()``."""

    def __init__(self, cfg, work_dir, seed=0, resume=None, log=None):
        self.cfg = cfg
        self.work_dir = work_dir
        self.seed = int(seed)
        if dist.is_main():
            os.makedirs(work_dir, exist_ok=True)
        self.log = log or Logger(work_dir)
        self.max_iters = int(cfg.runner["max_iters"])
        jt.set_global_seed(self.seed)  # the initial weights; under MPI rank 0's are then broadcast
        self.model = build_segmentor(cfg.model)
        if resume is None:
            report = self.model.init_weights()
            if report is not None:
                self.log(f"loaded pretrained backbone weights:\n{report[0]}")
        dist.broadcast_model(self.model)
        data = cfg.data
        self.train_set = build_dataset(data.train)
        batch = data.get("batch_size")
        if batch is None:  # mmseg configs: samples_per_gpu per process
            batch = data["samples_per_gpu"] * dist.world_size()
        if batch % dist.world_size():
            raise ValueError(f"the global batch {batch} is not divisible by {dist.world_size()} processes")
        self.train_set.set_loader(samples_per_gpu=batch // dist.world_size(),
                                  workers_per_gpu=data.get("workers_per_gpu", 2), shuffle=True, seed=self.seed,
                                  drop_last=True)
        self.batch = batch
        self.batches_per_epoch = self.train_set.num_samples() // batch
        if self.batches_per_epoch == 0:
            raise ValueError(f"the training set has {self.train_set.num_samples()} samples, fewer than one batch "
                             f"of {batch}")
        self.val_set = build_dataset(data.val) if "val" in data else None
        self.optimizer = build_optimizer(self.model, cfg.optimizer)
        self.schedule = build_lr_schedule(cfg.lr_config, self.max_iters)
        self.iter = 0
        self.best = {"mIoU": -1.0, "path": None}
        if resume:
            self.resume(resume)

    # ------------------------------------------------------------------ checkpoints
    def save(self, name):
        """Rank 0 writes ``work_dir/name`` atomically (model, optimizer moments, iteration, data position)."""
        if not dist.is_main():
            return None
        meta = {"iter": self.iter, "epoch": self.iter // self.batches_per_epoch,
                "batch_in_epoch": self.iter % self.batches_per_epoch, "seed": self.seed,
                "world_size": dist.world_size(), "best": self.best, "jseg_version": __version__,
                "config": self.cfg.pretty_text(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        path = os.path.join(self.work_dir, name)
        save_checkpoint(path, self.model, meta=meta, optimizer=optimizer_state(self.optimizer))
        return path

    def resume(self, path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--resume: checkpoint not found: {path}")
        with open(path, "rb") as f:
            raw = pickle.load(f)
        state, meta = unwrap_checkpoint(raw, path)
        opt = raw.get("optimizer")
        if opt is None or "iter" not in meta:
            raise ValueError(f"{path} is not a training checkpoint (no optimizer state / iteration); "
                             "use it as load_from / pretrained instead")
        load_state_dict(self.model, state, strict=True, name=path)
        load_optimizer_state(self.optimizer, opt)
        self.iter = int(meta["iter"])
        self.seed = int(meta.get("seed", self.seed))
        self.train_set.seed = self.seed
        self.best = meta.get("best", self.best)
        self.log(f"resumed from {path} at iteration {self.iter} (seed {self.seed})")

    # ------------------------------------------------------------------ loop
    def _batches(self):
        self.train_set.set_epoch(*divmod(self.iter, self.batches_per_epoch))
        while True:
            yield from self.train_set

    def train(self, until=None):
        """Train to ``max_iters`` (or stop at iteration ``until``, writing a checkpoint there)."""
        cfg = self.cfg
        stop = self.max_iters if until is None else min(int(until), self.max_iters)
        log_every = cfg.get("log_config", {}).get("interval", 50)
        ckpt_every = cfg.get("checkpoint_config", {}).get("interval", self.max_iters)
        eval_every = (cfg.get("evaluation") or {}).get("interval", 0)
        self.log(f"training {self.max_iters} iterations, global batch {self.batch} on {dist.world_size()} "
                 f"process(es), seed {self.seed}, work_dir {self.work_dir}")
        self.model.train()
        local = self.batch // dist.world_size()
        t_start, t_last, n_last = time.time(), time.time(), self.iter
        batches = self._batches()
        try:
            while self.iter < stop:
                batch = next(batches)
                jt.set_seed(self.seed * 1000003 + self.iter)
                self.model.set_nmf_sample_keys(  # stream 0: training; j = position in the global batch
                    [(self.seed, 0, self.iter, dist.rank() * local + j) for j in range(local)])
                self.schedule.apply(self.optimizer, self.iter)
                losses = self.model.forward_train(batch["img"], batch["gt_semantic_seg"])
                loss, log_vars = self.model.parse_losses(losses)
                if not all(math.isfinite(v) for v in log_vars.values()):
                    raise TrainingStopped(f"non-finite loss at iteration {self.iter + 1}: {log_vars}; stopping. "
                                          f"The last checkpoint in {self.work_dir} is intact.")
                self.optimizer.step(loss)
                self.iter += 1
                if self.iter % log_every == 0 or self.iter == self.max_iters:
                    now = time.time()
                    per_it = (now - t_last) / max(self.iter - n_last, 1)
                    eta = per_it * (self.max_iters - self.iter)
                    lr = self.optimizer.param_groups[0]["lr"]
                    self.log(f"iter {self.iter}/{self.max_iters}  lr {lr:.3e}  "
                             + "  ".join(f"{k} {v:.4f}" for k, v in log_vars.items())
                             + f"  {per_it:.3f} s/it  ETA {_fmt_time(eta)}  mem {_memory_mb():.0f} MB")
                    self.log.record({"iter": self.iter, "lr": lr, **log_vars, "time": per_it})
                    t_last, n_last = now, self.iter
                if self.iter % ckpt_every == 0 or self.iter in (self.max_iters, stop):
                    path = self.save(f"iter_{self.iter}.pkl")
                    if path:
                        self.log(f"saved checkpoint {path}")
                if self.val_set is not None and eval_every and (self.iter % eval_every == 0
                                                                or self.iter == self.max_iters):
                    self.run_eval()
        finally:  # frees the batches loaded ahead, also when training stops with an error
            batches.close()
        self.train_set.close()
        self.log(f"training done in {_fmt_time(time.time() - t_start)}")
        return self.best

    def run_eval(self):
        result = evaluate(self.model, self.val_set, seed=self.seed, log=self.log)
        self.log(f"evaluation at iteration {self.iter}:\n" + format_table(result, self.val_set.CLASSES))
        self.log.record({"iter": self.iter, "mode": "val", "aAcc": result["aAcc"], "mIoU": result["mIoU"],
                         "mAcc": result["mAcc"]})
        if result["mIoU"] > self.best["mIoU"]:
            old = self.best.get("path")
            self.best = {"mIoU": float(result["mIoU"]), "iter": self.iter,
                         "path": os.path.join(self.work_dir, f"best_mIoU_iter_{self.iter}.pkl")}
            self.save(os.path.basename(self.best["path"]))
            if dist.is_main() and old and old != self.best["path"] and os.path.exists(old):
                os.remove(old)
        return result
