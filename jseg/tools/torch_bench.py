"""The PyTorch/mmsegmentation 1.2.2 side of ``gpu_check``'s speed comparison (no jseg imports).

    python -m jseg.tools.torch_bench MODEL MODE DEVICE H W BATCH ITERS WARMUP

MODEL: segnext_t, segnext_s or segformer_b0 (mmseg's own configs, shipped in its wheel); MODE: eval
(``encode_decode`` under no_grad) or train (loss, backward, AdamW step), float32, TF32 off; DEVICE:
cuda or cpu.  Prints one ``TORCH_BENCH_JSON {...}`` line with the median seconds per iteration.
Run by an interpreter that has torch, mmseg, mmengine and mmcv (mmcv-lite is enough).
"""
import json
import os
import statistics
import sys
import time

MIM_CONFIGS = {
    "segnext_t": "segnext/segnext_mscan-t_1xb16-adamw-160k_ade20k-512x512.py",
    "segnext_s": "segnext/segnext_mscan-s_1xb16-adamw-160k_ade20k-512x512.py",
    "segformer_b0": "segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py",
}


def _without_compiled_mmcv_ops():
    """mmcv-lite has no compiled ``mmcv.ops``, which ``import mmseg.models`` imports (for heads these
    models do not use): give it a module whose names raise when called.  A full mmcv is left alone."""
    import types
    try:
        import mmcv.ops  # noqa: F401
        return False
    except ImportError:
        pass
    for k in [k for k in sys.modules if k == "mmcv.ops" or k.startswith("mmcv.ops.")]:
        del sys.modules[k]
    ops = types.ModuleType("mmcv.ops")

    def missing(name):
        if name.startswith("__"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            raise NotImplementedError(f"mmcv.ops.{name}: not in mmcv-lite")
        return type(name, (), {"__init__": call, "__call__": call, "apply": staticmethod(call)})

    ops.__getattr__ = missing
    sys.modules["mmcv.ops"] = ops
    import mmcv
    mmcv.ops = ops
    return True


def build(model_name, device):
    _without_compiled_mmcv_ops()
    import mmseg
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(os.path.join(os.path.dirname(mmseg.__file__), ".mim", "configs", MIM_CONFIGS[model_name]))
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None          # random weights: speed does not depend on them
    model_cfg = _plain_bn(cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model))
    return MODELS.build(model_cfg).to(device)


def _plain_bn(node):
    """SyncBN -> BN everywhere: one process, no process group."""
    if isinstance(node, dict):
        return {k: ("BN" if k == "type" and v == "SyncBN" else _plain_bn(v)) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_plain_bn(v) for v in node)
    return node


def main(argv):
    import torch

    model_name, mode, device = argv[0], argv[1], argv[2]
    H, W, batch, iters, warmup = (int(x) for x in argv[3:8])
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = build(model_name, device)
    img = torch.randn(batch, 3, H, W, device=device)
    metas = [dict(img_shape=(H, W), ori_shape=(H, W), pad_shape=(H, W), padding_size=[0, 0, 0, 0])] * batch
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if mode == "train":
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        model.train()
        samples = []
        for _ in range(batch):
            s = SegDataSample(metainfo=metas[0])
            s.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, H, W), device=device))
            samples.append(s)
        opt = torch.optim.AdamW(model.parameters(), lr=6e-5, weight_decay=0.01)

        def step():
            losses = model.loss(img, samples)
            loss = sum(v for k, v in losses.items() if "loss" in k)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sync()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model.encode_decode(img, metas)
            sync()
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print("TORCH_BENCH_JSON " + json.dumps({"model": model_name, "mode": mode, "device": device,
                                            "median_s": statistics.median(times), "torch": torch.__version__,
                                            "mmseg": __import__("mmseg").__version__}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
