"""Shared test helpers: fixture paths, tolerant comparisons, the micro model."""
import os

import numpy as np
import jittor as jt

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
SEGNEXT = os.path.join(FIXTURES, "segnext")
MICRO_CONFIG = os.path.join(SEGNEXT, "segnext_micro_ade5_random_config.py")
MICRO_PTH = os.path.join(SEGNEXT, "segnext_micro_ade5_random.pth")
MICRO_STATE_NPZ = os.path.join(SEGNEXT, "segnext_micro_ade5_random_state_dict.npz")
SEGFORMER = os.path.join(FIXTURES, "segformer")
SEGFORMER_TINY_CONFIG = os.path.join(SEGFORMER, "segformer_tiny_config.py")
SEGFORMER_TINY_PTH = os.path.join(SEGFORMER, "segformer_tiny.pth")
CGRSEG = os.path.join(FIXTURES, "cgrseg")
CGRSEG_TINY_CONFIG = os.path.join(CGRSEG, "cgrseg_tiny_config.py")
CGRSEG_TINY_PTH = os.path.join(CGRSEG, "cgrseg_tiny.pth")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ATOL = RTOL = 1e-4  # fp32 noise floor of the fixtures (see tests/fixtures/README.md)


def segnext_path(name):
    return os.path.join(SEGNEXT, name)


def load_npz(name, folder=SEGNEXT):
    with np.load(os.path.join(folder, name)) as z:
        return {k: z[k] for k in z.files}


def to_numpy(x):
    return x.numpy() if isinstance(x, jt.Var) else np.asarray(x)


def assert_close(actual, expected, name="", atol=ATOL, rtol=RTOL):
    actual, expected = to_numpy(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != reference {expected.shape}"
    diff = np.abs(actual.astype(np.float64) - expected)
    bad = diff > atol + rtol * np.abs(expected)
    assert not bad.any(), (f"{name}: {int(bad.sum())}/{bad.size} elements off; max |diff| {diff.max():.3e} "
                           f"at {np.unravel_index(diff.argmax(), diff.shape)}")


def assert_grad_close(grad, ref, name="", rtol=RTOL, zero_atol=1e-6):
    """Gradient check relative to max|ref|.

    Tensors whose reference gradient is pure fp32 noise (conv biases feeding a
    train-mode BN have a true gradient of 0, |g| < 5e-8) are compared with
    ``zero_atol`` instead.
    """
    g, r = to_numpy(grad).astype(np.float64), np.asarray(ref, dtype=np.float64)
    assert g.shape == r.shape, f"{name}: shape {g.shape} != reference {r.shape}"
    scale = np.abs(r).max()
    err = np.abs(g - r).max()
    if scale < zero_atol:
        assert np.abs(g).max() < zero_atol, f"{name}: reference grad is ~0 ({scale:.1e}), ours {np.abs(g).max():.1e}"
        return
    assert err <= rtol * scale, f"{name}: max|diff| {err:.3e} > {rtol:g} * max|g| ({scale:.3e})"


def micro_config(**model_overrides):
    from jseg.config import Config
    cfg = Config.fromfile(MICRO_CONFIG)
    for dotted, value in model_overrides.items():
        cfg.merge_options({"+model." + dotted.replace("__", "."): value})  # + : may add constructor args
    return cfg


def micro_model(checkpoint=MICRO_PTH, train=False, **model_overrides):
    from jseg.checkpoint import load_checkpoint
    from jseg.models import build_segmentor
    model = build_segmentor(micro_config(**model_overrides).model)
    load_checkpoint(model, checkpoint)
    return model.train() if train else model.eval()


def assert_state_matches_tsv(state, tsv_path):
    """Keys in order and shapes equal an official ``key<TAB>shape<TAB>dtype`` listing
    (``num_batches_tracked``: 0-d in PyTorch, (1,) in Jittor)."""
    rows = [line.rstrip("\n").split("\t") for line in open(tsv_path)]
    assert list(state) == [r[0] for r in rows]
    for key, shape, _ in rows:
        ours = tuple(state[key].shape)
        if key.endswith("num_batches_tracked"):
            assert shape == "()" and ours == (1,), key
        else:
            assert str(ours) == shape, f"{key}: {ours} vs official {shape}"


def assert_features_match(out, fixture, final="final_logits"):
    """``forward_features`` output against a fixture's stage1..4, head_logits and final logits."""
    for i in range(1, 5):
        assert_close(out[f"stage{i}"], fixture[f"stage{i}"], f"stage{i}")
    assert_close(out["head_logits"], fixture["head_logits"], "head_logits")
    assert_close(out["logits"], fixture[final], final)


def segformer_tiny(train=False, **model_overrides):
    """The fixtures' reduced SegFormer with the official checkpoint loaded (strict)."""
    return _tiny(SEGFORMER_TINY_CONFIG, SEGFORMER_TINY_PTH, train, **model_overrides)


def cgrseg_tiny(train=False, **model_overrides):
    """The fixtures' reduced CGRSeg with the authors'-code checkpoint loaded (strict)."""
    return _tiny(CGRSEG_TINY_CONFIG, CGRSEG_TINY_PTH, train, **model_overrides)


def _tiny(config, checkpoint, train=False, **model_overrides):
    from jseg.checkpoint import load_checkpoint
    from jseg.config import Config
    from jseg.models import build_segmentor
    cfg = Config.fromfile(config)
    for dotted, value in model_overrides.items():
        cfg.merge_options({"+model." + dotted.replace("__", "."): value})  # + : may add constructor args
    model = build_segmentor(cfg.model)
    load_checkpoint(model, checkpoint)
    return model.train() if train else model.eval()


def load_module_params(module, fixture):
    """Load ``param.<key>`` arrays of a module fixture strictly into ``module``."""
    from jseg.checkpoint import load_state_dict
    params = {k[len("param."):]: v for k, v in fixture.items() if k.startswith("param.")}
    return load_state_dict(module, params, strict=True, target="module")


def tokens_to_nchw(tokens, H, W):
    B, N, C = tokens.shape
    return np.ascontiguousarray(tokens.transpose(0, 2, 1).reshape(B, C, H, W))


def nchw_to_tokens(x):
    x = to_numpy(x)
    B, C, H, W = x.shape
    return x.reshape(B, C, H * W).transpose(0, 2, 1)
