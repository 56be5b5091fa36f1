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
