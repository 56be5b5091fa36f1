"""A tiny training config on a tiny toy folder, shared by the runner tests and the MPI script."""
from jseg.config import Config
from tests.helpers import CGRSEG_TINY_CONFIG, ROOT, SEGFORMER_TINY_CONFIG

TINY_MODELS = {"segformer": SEGFORMER_TINY_CONFIG, "cgrseg": CGRSEG_TINY_CONFIG}


def tiny_cfg(toy_root, max_iters=4, batch_size=4, norm="SyncBN", eval_interval=0, workers=0, model="segnext"):
    """``model``: 'segnext' (a small SegNeXt), or 'segformer' / 'cgrseg' (the fixtures' tiny models, with
    ``norm`` in every norm layer (CGRSeg's RCM norms are plain BN officially: per-process statistics), and no
    dropout or drop path: their masks come from each process's RNG)."""
    cfg = Config.fromfile(f"{ROOT}/configs/quickstart/segnext_toy.py")
    if model != "segnext":
        tiny = Config.fromfile(TINY_MODELS[model]).model
        norm_cfg = dict(type=norm, requires_grad=True)
        tiny.decode_head.update(num_classes=cfg.model.decode_head.num_classes, dropout_ratio=0.0, norm_cfg=norm_cfg)
        tiny.backbone.drop_path_rate = 0.0
        if "norm_cfg" in tiny.backbone:
            tiny.backbone.norm_cfg = norm_cfg
        if tiny.decode_head.type == "CGRSeg":
            tiny.decode_head.rcm_norm_cfg = norm_cfg
        cfg.model = tiny
        return _tiny_schedule(cfg, toy_root, max_iters, batch_size, eval_interval, workers)
    cfg.merge_options({
        "model.backbone.embed_dims": [8, 16, 32, 64], "model.backbone.depths": [1, 1, 1, 1],
        "model.backbone.norm_cfg": dict(type=norm, requires_grad=True),
        "model.decode_head.in_channels": [16, 32, 64], "model.decode_head.channels": 32,
        "model.decode_head.ham_channels": 32, "model.decode_head.ham_kwargs": dict(MD_R=4)})
    return _tiny_schedule(cfg, toy_root, max_iters, batch_size, eval_interval, workers)


def _tiny_schedule(cfg, toy_root, max_iters, batch_size, eval_interval, workers):
    cfg.merge_options({
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
