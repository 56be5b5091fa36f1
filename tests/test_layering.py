"""Shared code knows no model: jseg.checkpoint and jseg.analysis import no model module and name no model class
(each family's key maps, converters, hints and counting rules live beside it, docs/adding_a_model.md)."""
import ast
import os

import pytest

from tests.helpers import ROOT

MODEL_NAMES = ("MSCAN", "MixVisionTransformer", "EfficientFormerV2", "LightHamHead", "NMF2D", "SegFormerHead",
               "CGRSeg", "Hamburger", "mscan", "mit", "efficientformer", "ham_head", "segformer_head", "cgr_head")


@pytest.mark.parametrize("path", ["jseg/checkpoint.py", "jseg/analysis.py"])
def test_shared_modules_know_no_model(path):
    tree = ast.parse(open(os.path.join(ROOT, path)).read())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if "models" in m.split(".")], imported
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
            {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    strings = " ".join(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                       and n is not getattr(tree.body[0], "value", None))
    assert not [m for m in MODEL_NAMES if m in names], names & set(MODEL_NAMES)
    assert not [m for m in ("mlp.dwconv", "linear_fuse", "attention_bias", "dist_head", "fusion_conv")
                if m in strings]
