"""A tiny training config on a tiny toy folder, shared by the runner tests and the MPI script."""
from jseg.config import Config
from tests.helpers import ROOT


def tiny_cfg(toy_root, max_iters=4, batch_size=4, norm="SyncBN", eval_interval=0, workers=0):
    cfg = Config.fromfile(f"{ROOT}/configs/quickstart/segnext_toy.py")
    cfg.merge_options({
        "model.backbone.embed_dims": [8, 16, 32, 64], "model.backbone.depths": [1, 1, 1, 1],
        "model.backbone.norm_cfg": dict(type=norm, requires_grad=True),
        "model.decode_head.in_channels": [16, 32, 64], "model.decode_head.channels": 32,
        "model.decode_head.ham_channels": 32, "model.decode_head.ham_kwargs": dict(MD_R=4),
        "data.batch_size": batch_size, "data.workers_per_gpu": workers,
        "data.train.dataset.data_root": toy_root, "data.val.data_root": toy_root,
        "data.train.times": 1, "runner.max_iters": max_iters, "lr_config.warmup_iters": 2,
        "log_config.interval": 1, "checkpoint_config.interval": max_iters,
        "evaluation": dict(interval=eval_interval) if eval_interval else None,
    })
    for t in cfg.data.train.dataset.pipeline:
        if t["type"] == "Resize":
            t["img_scale"] = (64, 32)
        if t["type"] in ("RandomCrop", "Pad"):
            t["crop_size" if t["type"] == "RandomCrop" else "size"] = (32, 32)
    for t in cfg.data.val.pipeline:
        if t["type"] == "MultiScaleFlipAug":
            t["img_scale"] = (64, 32)
    return cfg
