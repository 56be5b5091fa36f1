"""Config files: _base_ inheritance, _delete_, overrides, dump; the registry's errors."""
import textwrap

import pytest

from jseg.config import Config, ConfigError, parse_cfg_options
from jseg.registry import MODELS
from tests.helpers import ROOT


def _write(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_base_merge_delete_and_options(tmp_path):
    _write(tmp_path / "base.py", """
        norm = dict(type='BN')
        model = dict(type='EncoderDecoder', backbone=dict(type='MSCAN', depths=[3, 3, 5, 2], norm_cfg=norm),
                     test_cfg=dict(mode='slide', crop_size=(8, 8), stride=(4, 4)))
    """)
    child = _write(tmp_path / "child.py", """
        _base_ = './base.py'
        model = dict(backbone=dict(depths=[1, 1, 1, 1]), test_cfg=dict(_delete_=True, mode='whole'))
    """)
    cfg = Config.fromfile(child)
    assert cfg.model.backbone.depths == [1, 1, 1, 1]
    assert cfg.model.backbone.norm_cfg == {"type": "BN"} and cfg.model.type == "EncoderDecoder"
    assert cfg.model.test_cfg == {"mode": "whole"}
    cfg.merge_options(parse_cfg_options(["model.backbone.depths=[2,2,2,2]", "model.new.flag=true", "x=abc"]))
    assert cfg.model.backbone.depths == [2, 2, 2, 2] and cfg.model.new.flag is True and cfg.x == "abc"
    dumped = tmp_path / "dumped.py"
    cfg.dump(str(dumped))
    assert Config.fromfile(str(dumped)).to_dict() == cfg.to_dict()


def test_config_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*missing.py"):
        Config.fromfile(str(tmp_path / "missing.py"))
    a = _write(tmp_path / "a.py", "_base_ = './b.py'\n")
    _write(tmp_path / "b.py", "_base_ = './a.py'\n")
    with pytest.raises(ConfigError, match="circular _base_"):
        Config.fromfile(a)
    bad = _write(tmp_path / "bad.py", "model = dict(\n")
    with pytest.raises(ConfigError, match="bad.py"):
        Config.fromfile(bad)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_cfg_options(["novalue"])


def test_yaml_config(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("model:\n  type: EncoderDecoder\n  test_cfg: {mode: whole}\n")
    assert Config.fromfile(str(y)).model.test_cfg.mode == "whole"


def test_shipped_configs_inherit_the_base():
    cfg = Config.fromfile(f"{ROOT}/configs/segnext/segnext_small_512x512_ade20k_160k.py")
    assert cfg.model.backbone.mlp_ratios == [8, 8, 4, 4]            # from _base_
    assert cfg.model.backbone.depths == [2, 2, 4, 2]                 # overridden
    assert cfg.model.decode_head.ham_kwargs == {"MD_R": 16}
    assert cfg.model.decode_head.norm_cfg == {"type": "GN", "num_groups": 32, "requires_grad": True}


def test_registry_errors_are_clear():
    with pytest.raises(KeyError, match="unknown model type 'MSCANX'.*MSCAN"):
        MODELS.build(dict(type="MSCANX"))
    with pytest.raises(TypeError, match=r"MSCAN \(model\) got unexpected config keys \['depth'\]"):
        MODELS.build(dict(type="MSCAN", depth=[1, 1, 1, 1]))
    with pytest.raises(TypeError, match="'type' key"):
        MODELS.build(dict(depths=[1]))


EXPECTED = {  # dataset: (classes, global batch, iterations, crop, test mode)  -- fact sheet §4-6 / paper suppl.
    "ade20k_160k": (150, 16, 160000, 512, "whole"), "cityscapes_160k": (19, 8, 160000, 1024, "slide"),
    "coco_stuff164k_80k": (171, 16, 80000, 512, "whole"), "voc12aug_80k": (21, 16, 80000, 512, "whole"),
    "pascal_context_59_80k": (59, 16, 80000, 480, "slide"), "isaid_160k": (16, 16, 160000, 896, "whole"),
}


def test_every_training_config_builds_with_the_official_numbers():
    import glob
    import os
    from jseg.models import build_segmentor
    files = sorted(glob.glob(f"{ROOT}/configs/segnext/*.py"))
    assert len(files) == 24
    for path in files:
        name = os.path.basename(path)[:-3]
        key = next(k for k in EXPECTED if name.endswith(k))
        classes, batch, iters, crop, mode = EXPECTED[key]
        cfg = Config.fromfile(path)
        assert cfg.model.decode_head.num_classes == classes, name
        assert cfg.data.batch_size == batch and cfg.runner.max_iters == iters, name
        assert cfg.crop_size == (crop, crop) and cfg.model.test_cfg["mode"] == mode, name
        assert cfg.optimizer.lr == 6e-5 and cfg.lr_config.warmup_iters == 1500, name
        assert cfg.model.backbone.init_cfg.checkpoint.startswith("pretrained/mscan_"), name
        build_segmentor(cfg.model)
