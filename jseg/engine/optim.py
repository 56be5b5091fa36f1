"""Optimizer construction with mmcv 1.x ``DefaultOptimizerConstructor`` semantics.

``paramwise_cfg.custom_keys``: a parameter's full name (``backbone.block1.0.norm1.weight``)
is matched against the keys as substrings, longest key first (ties alphabetically),
first match only; ``lr_mult`` / ``decay_mult`` scale the base lr / weight decay.
Parameters with equal (lr, weight_decay) share one Jittor param group.
"""
from collections import OrderedDict

import numpy as np
import jittor as jt


def param_groups(model, lr, weight_decay=0.0, paramwise_cfg=None):
    """``[{'params', 'names', 'lr', 'initial_lr', 'weight_decay'}]`` for the trainable parameters."""
    custom = dict((paramwise_cfg or {}).get("custom_keys", {}))
    unknown = set(paramwise_cfg or {}) - {"custom_keys"}
    if unknown:
        raise KeyError(f"paramwise_cfg: unsupported keys {sorted(unknown)} (only custom_keys)")
    keys = sorted(sorted(custom), key=len, reverse=True)
    groups = OrderedDict()
    for name, p in model.state_dict().items():
        if p.is_stop_grad():
            continue
        p_lr, p_wd = lr, weight_decay
        for key in keys:
            if key in name:
                p_lr = lr * custom[key].get("lr_mult", 1.0)
                p_wd = weight_decay * custom[key].get("decay_mult", 1.0)
                break
        g = groups.setdefault((p_lr, p_wd), {"params": [], "names": [], "lr": p_lr, "initial_lr": p_lr,
                                             "weight_decay": p_wd})
        g["params"].append(p)
        g["names"].append(name)
    return list(groups.values())


def build_optimizer(model, cfg):
    """``cfg = dict(type='AdamW', lr=..., betas=..., weight_decay=..., paramwise_cfg=...)``."""
    cfg = dict(cfg)
    kind = cfg.pop("type")
    paramwise = cfg.pop("paramwise_cfg", None)
    lr = cfg.pop("lr")
    wd = cfg.pop("weight_decay", 0.0)
    groups = param_groups(model, lr, wd, paramwise)
    if kind == "AdamW":
        args = dict(eps=cfg.pop("eps", 1e-8), betas=tuple(cfg.pop("betas", (0.9, 0.999))), weight_decay=wd)
        cls = jt.optim.AdamW
    elif kind == "SGD":
        args = dict(momentum=cfg.pop("momentum", 0.0), weight_decay=wd)
        cls = jt.optim.SGD
    else:
        raise KeyError(f"unknown optimizer type {kind!r}; expected AdamW or SGD")
    if cfg:
        raise TypeError(f"optimizer {kind}: unexpected keys {sorted(cfg)}")
    return cls(groups, lr, **args)


def optimizer_state(opt):
    """A picklable snapshot: step count, per-group lr, and every moment buffer keyed by parameter name."""
    groups = []
    for g in opt.param_groups:
        slots = {s: {n: v.numpy() for n, v in zip(g["names"], g[s])} for s in ("m", "values") if s in g}
        groups.append({"lr": g["lr"], "initial_lr": g["initial_lr"], "weight_decay": g["weight_decay"],
                       "names": list(g["names"]), **slots})
    return {"type": type(opt).__name__, "n_step": opt.n_step, "groups": groups}


def load_optimizer_state(opt, state):
    """Restore :func:`optimizer_state` into an optimizer built for the same model and config."""
    if state.get("type") != type(opt).__name__ or len(state["groups"]) != len(opt.param_groups):
        raise ValueError(f"optimizer state ({state.get('type')}, {len(state['groups'])} groups) does not match "
                         f"this optimizer ({type(opt).__name__}, {len(opt.param_groups)} groups)")
    for g, s in zip(opt.param_groups, state["groups"]):
        if g["names"] != s["names"]:
            raise ValueError("optimizer state: parameter groups differ from this model's")
        g["lr"], g["initial_lr"], g["weight_decay"] = s["lr"], s["initial_lr"], s["weight_decay"]
        for slot in ("m", "values"):
            if slot in s and slot in g:
                for var, name in zip(g[slot], g["names"]):
                    var.update(jt.array(np.array(s[slot][name], copy=True)))
    opt.n_step = int(state["n_step"])
    jt.sync_all()
