"""Run a segmentor on images without a dataset on disk.

    model = init_model('configs/segnext/segnext_tiny_512x512_ade20k_160k.py', 'segnext_tiny.pth')
    labels = inference_model(model, 'photo.jpg')              # (H, W) class ids at the photo's size
    labels, probs = inference_model(model, [img_a, img_b], return_probs=True)

Images are paths or BGR uint8 arrays (as ``cv2.imread`` gives), of any sizes; each goes
through the config's test pipeline (resize, whole or slide inference, optional
multi-scale + flip) and comes back at its original resolution.

``seed``: SegNeXt's Ham head starts its matrix decomposition from random bases.  With a
seed, an image's random streams (``jseg.models.random_streams``) are keyed by ``(seed, the
image's content)``: the same
image gives the same result with the same seed, wherever it is in the list, whatever
else is in the list and in every call (and ``jseg.tools.infer`` gives the same labels).
Another seed gives other bases, so the probabilities differ slightly.  Models without a
Ham head (SegFormer, CGRSeg) are deterministic and ignore the seed.
"""
import copy
import hashlib

import numpy as np

from ..checkpoint import load_checkpoint
from ..config import Config
from ..datasets import DATASETS
from ..device import select_device
from ..datasets.transforms import Compose, DataError
from ..datasets.transforms.loading import read_image
from ..datasets.transforms.test_time_aug import enable_aug_test
from ..models import build_segmentor

def _classes_and_palette(cfg, meta):
    classes, palette = meta.get("CLASSES"), meta.get("PALETTE")
    test = (cfg.get("data") or {}).get("test") or (cfg.get("data") or {}).get("val") or {}
    if classes is None and test.get("type") in DATASETS:
        cls = DATASETS.get(test["type"])
        classes = test.get("classes") or cls.CLASSES
        palette = palette or test.get("palette") or cls.PALETTE
    n = cfg.model.decode_head.num_classes
    if classes is None or len(classes) != n:
        classes = tuple(f"class_{i}" for i in range(n))
    if palette is None or len(palette) != len(classes):
        rng = np.random.default_rng(0)
        palette = tuple(tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in classes)
    return tuple(classes), tuple(tuple(int(c) for c in p) for p in palette)


def init_model(config, checkpoint=None, device="auto", cfg_options=None, strict=True,
               strict_hint="pass strict=False to load the matching keys anyway"):
    """Build the model of ``config`` (path or Config) in eval mode, loading ``checkpoint`` (.pkl or .pth).

    The key report of the load is in ``model.load_report``; class names and palette (from the
    checkpoint's meta, else the config's test dataset) in ``model.CLASSES`` / ``model.PALETTE``.
    """
    select_device(device)
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    if cfg_options:
        cfg.merge_options(cfg_options)
    cfg.model.backbone.pop("init_cfg", None)  # the checkpoint (if any) holds the weights
    cfg.model["pretrained"] = None
    model = build_segmentor(cfg.model)
    meta, report = {}, None
    if checkpoint:
        report, meta = load_checkpoint(model, checkpoint, strict=strict, strict_hint=strict_hint)
    model.cfg = cfg
    model.load_report = report
    model.CLASSES, model.PALETTE = _classes_and_palette(cfg, meta)
    return model.eval()


def _test_pipeline(cfg, aug_test):
    test = (cfg.get("data") or {}).get("test") or (cfg.get("data") or {}).get("val")
    if not test or "pipeline" not in test:
        raise ValueError("the config has no data.test pipeline; inference needs its test transforms")
    steps = [copy.deepcopy(t) for t in test["pipeline"] if t["type"] != "LoadImageFromFile"]
    return Compose(enable_aug_test(steps) if aug_test else steps)


def image_key(img):
    """Four 32-bit words of the SHA-256 of an image's shape and pixels: keys its random streams."""
    h = hashlib.sha256(repr((img.shape, img.dtype.str)).encode())
    h.update(np.ascontiguousarray(img).data)
    return tuple(int.from_bytes(h.digest()[i:i + 4], "little") for i in range(0, 16, 4))


def inference_model(model, imgs, seed=0, aug_test=False, return_probs=False):
    """Label maps (H, W) int64 at each image's original size (a list for a list input).

    With ``return_probs=True`` also the class probabilities (K, H, W) float32.
    """
    single = not isinstance(imgs, (list, tuple))
    pipeline = _test_pipeline(model.cfg, aug_test)
    labels, probs = [], []
    model.eval()
    for i, img in enumerate([imgs] if single else imgs):
        name = img if isinstance(img, str) else f"<array {i}>"
        arr = read_image(img) if isinstance(img, str) else np.asarray(img)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise DataError(f"{name}: expected a BGR uint8 image (H, W, 3), got {arr.dtype} {arr.shape}")
        data = pipeline({"img": arr, "filename": name, "ori_filename": name, "img_shape": arr.shape,
                         "ori_shape": arr.shape, "pad_shape": arr.shape, "scale_factor": 1.0,
                         "rng": np.random.default_rng(seed)})
        # stream 2: inference; keyed by content, not position (an image's result must not depend on its neighbours)
        prob = model.infer_test_sample(data, arr.shape[:2], sample_key=(seed, 2, *image_key(arr)))
        labels.append(prob.argmax(0).astype(np.int64))
        probs.append(prob.astype(np.float32))
    if single:
        return (labels[0], probs[0]) if return_probs else labels[0]
    return (labels, probs) if return_probs else labels
