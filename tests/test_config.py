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
    cfg.merge_options(parse_cfg_options(["model.backbone.depths=[2,2,2,2]", "+model.new.flag=true", "+x=abc"]))
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
    with pytest.raises(ConfigError, match="unknown model type 'MSCANX' \\(did you mean 'MSCAN'\\?\\)"):
        MODELS.build(dict(type="MSCANX"))
    with pytest.raises(ConfigError, match=r"MSCAN \(model\) got unexpected config keys \['depth'\] "
                                          r"\(did you mean depth -> depths\?\)"):
        MODELS.build(dict(type="MSCAN", depth=[1, 1, 1, 1]))
    with pytest.raises(ConfigError, match="'type' key"):
        MODELS.build(dict(depths=[1]))


QUICKSTART = f"{ROOT}/configs/quickstart/segnext_toy.py"


@pytest.mark.parametrize("option, message", [
    # a misspelled key is refused with the closest existing one (it used to start a 2000-iteration run)
    ("runer.max_iters=1", r"no key 'runer' \(did you mean 'runner.max_iters'\?\)"),
    ("checkpoint_config.intervall=1", r"no key 'checkpoint_config.intervall' "
                                      r"\(did you mean 'checkpoint_config.interval'\?\)"),
    # a value of the wrong kind names the key (it was a bare "invalid literal for int()")
    ("runner.max_iters=abc", r"runner.max_iters: expected an integer \(the config has 2000\), got str 'abc'"),
    ("optimizer.lr=fast", r"optimizer.lr: expected a number"),
    ("data.train.dataset.pipeline.12.type=X", r"pipeline is a list of 10 items; '12' is not an index"),
    ("runner.max_iters.x=1", r"runner.max_iters is int 2000, not a section"),
])
def test_cfg_options_refuse_unknown_keys_and_wrong_kinds(option, message):
    cfg = Config.fromfile(QUICKSTART)
    with pytest.raises(ConfigError, match=message):
        cfg.merge_options(parse_cfg_options([option]))


def test_cfg_options_change_existing_keys_and_add_with_plus():
    cfg = Config.fromfile(QUICKSTART)
    cfg.merge_options(parse_cfg_options([
        "runner.max_iters=10", "optimizer.lr=1", "data.train.dataset.pipeline.2.img_scale=(64,32)",
        "evaluation=None", "+model.decode_head.new_arg=3", "+extra.nested.key='x'"]))
    assert cfg.runner.max_iters == 10 and cfg.optimizer.lr == 1 and cfg.evaluation is None
    assert cfg.data.train.dataset.pipeline[2].img_scale == (64, 32)
    assert cfg.model.decode_head.new_arg == 3 and cfg.extra.nested.key == "x"


def _training_problems(**changes):
    from jseg.engine.settings import check_training_config
    cfg = Config.fromfile(QUICKSTART)
    for section, value in changes.items():
        cfg[section] = value
    try:
        check_training_config(cfg)
    except ConfigError as e:
        return str(e)
    return ""


def test_training_settings_nothing_reads_are_refused():
    assert _training_problems() == ""
    assert "checkpoint_config.intervall: not a setting jseg reads (did you mean checkpoint_config.interval?)" \
        in _training_problems(checkpoint_config=dict(intervall=1))
    assert "runner.max_iter: not a setting jseg reads (did you mean runner.max_iters?)" \
        in _training_problems(runner=dict(type="IterBasedRunner", max_iter=10))
    assert "checkpoint_config.interval = 0: expected an integer >= 1" in _training_problems(
        checkpoint_config=dict(interval=0))                     # was a ZeroDivisionError after the first iteration
    assert "log_config.interval = 0" in _training_problems(log_config=dict(interval=0))
    assert "lr_config.warmup_itres: not a setting jseg reads (did you mean lr_config.warmup_iters?)" in \
        _training_problems(lr_config=dict(policy="poly", warmup_itres=10))
    assert "optimizer.momentum: AdamW has no momentum" in _training_problems(
        optimizer=dict(type="AdamW", lr=1e-3, momentum=0.9))
    assert "optimizer_config.grad_clip" in _training_problems(optimizer_config=dict(grad_clip=dict(max_norm=1)))
    assert "evaluation.metric = 'mAP'" in _training_problems(evaluation=dict(interval=1, metric="mAP"))
    assert "evaluation.metric" not in _training_problems(evaluation=dict(interval=1, metric=["mIoU", "mDice",
                                                                                             "mFscore"]))
    assert "data.workers_per_gpus: not a setting jseg reads (did you mean data.workers_per_gpu?)" in \
        _training_problems(data=dict(Config.fromfile(QUICKSTART).data, workers_per_gpus=1))
    assert "resume_from = 'x.pkl'" in _training_problems(resume_from="x.pkl")
    assert "runner.max_iters = 'abc'" in _training_problems(runner=dict(type="IterBasedRunner", max_iters="abc"))
    many = _training_problems(runner=dict(max_iters=0), evaluation=dict(intervals=3))
    assert "runner.max_iters = 0" in many and "evaluation.intervals" in many      # every problem at once
    assert _training_problems(evaluation=None) == ""
    data = Config.fromfile(QUICKSTART).data                       # the test set is checked, though not built
    data.test.img_dirr = data.test.pop("img_dir")
    assert "data.test: ToyDataset (dataset) got unexpected config keys ['img_dirr']" in _training_problems(data=data) and "did you mean img_dirr -> img_dir?" in \
        _training_problems(data=data)
    data = Config.fromfile(QUICKSTART).data
    data.train.dataset.pipeline[2]["ratio_rang"] = (0.5, 2.0)
    assert "Resize (transform) got unexpected config keys ['ratio_rang']" in _training_problems(data=data)


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


def test_every_shipped_config_passes_the_training_check():
    import glob
    from jseg.engine.settings import check_training_config
    files = sorted(glob.glob(f"{ROOT}/configs/*/*.py"))
    files = [f for f in files if "/_base_/" not in f]
    assert len(files) > 40
    for path in files:
        check_training_config(Config.fromfile(path))
