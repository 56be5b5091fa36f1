"""Python/YAML/JSON configs with mmseg-style ``_base_`` inheritance.

* A ``.py`` config is executed; its public top-level names (not modules,
  functions or classes) form the config.  ``_base_`` (a path or list of paths,
  relative to the file) is loaded first and the child is merged into it.
* Merging is recursive for dicts; a child dict with ``_delete_=True`` replaces
  the base dict instead of merging into it.
* ``Config.merge_options({'model.decode_head.num_classes': 19})`` applies
  command-line overrides (``--cfg-options``); values are parsed as Python
  literals where possible.  A misspelled key or a value of the wrong kind is
  refused with the closest existing key; ``+key=value`` adds a new key.
"""
import ast
import copy
import difflib
import json
import os
import pprint
import types

import yaml

from .errors import UserError

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"


class ConfigError(UserError):
    """A config file or setting that cannot be used; the message names the file or key."""


class ConfigDict(dict):
    """A dict whose keys can also be read and written as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __setattr__(self, name, value):
        self[name] = value

    def __deepcopy__(self, memo):
        return ConfigDict({k: copy.deepcopy(v, memo) for k, v in self.items()})


def _wrap(obj):
    if isinstance(obj, dict):
        return ConfigDict({k: _wrap(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return [_wrap(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_wrap(v) for v in obj)
    return obj


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def merge(base, child):
    """Recursively merge ``child`` into a copy of ``base`` (mmcv semantics)."""
    out = copy.deepcopy(base)
    for k, v in child.items():
        if isinstance(v, dict):
            v = dict(v)
            delete = v.pop(DELETE_KEY, False)
            if not delete and isinstance(out.get(k), dict):
                out[k] = merge(out[k], v)
                continue
            out[k] = merge({}, v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _read_file(path):
    ext = os.path.splitext(path)[1]
    if ext == ".py":
        with open(path) as f:
            src = f.read()
        ns = {"__file__": path, "__name__": "__jseg_config__"}
        try:
            exec(compile(src, path, "exec"), ns)
        except Exception as e:
            raise ConfigError(f"error while executing config {path}: {type(e).__name__}: {e}") from e
        return {k: v for k, v in ns.items()
                if not k.startswith("__") and not isinstance(v, (types.ModuleType, types.FunctionType, type))}
    if ext in (".yaml", ".yml"):
        with open(path) as f:
            return yaml.safe_load(f) or {}
    if ext == ".json":
        with open(path) as f:
            return json.load(f)
    raise ConfigError(f"unsupported config file type {ext!r} for {path} (expected .py, .yaml, .yml or .json)")


def _load(path, chain):
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    if path in chain:
        raise ConfigError(f"circular _base_ inheritance: {' -> '.join(chain + [path])}")
    raw = _read_file(path)
    bases = raw.pop(BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    merged = {}
    for b in bases:
        bpath = os.path.join(os.path.dirname(path), b)
        base_cfg = _load(bpath, chain + [path])
        dup = set(merged) & set(base_cfg)
        if dup:
            raise ConfigError(f"{path}: keys {sorted(dup)} are defined in more than one _base_ file")
        merged.update(base_cfg)
    return merge(merged, raw)


def _parse_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        if low in ("none", "null"):
            return None
        return text


def closest(name, candidates):
    """The candidate most like ``name`` (difflib), or None."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(name, candidates):
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    near = closest(name, candidates)
    return f" (did you mean {near!r}?)" if near else ""


def _walk(obj, prefix=""):
    """``(dotted key, value)`` of every node of a nested config (dicts by name, lists by index), parents first."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield f"{prefix}{k}", v
        yield from _walk(v, f"{prefix}{k}.")


def dotted_keys(obj):
    """Every dotted key of a nested config, parents included."""
    return [k for k, _ in _walk(obj)]


def flatten(obj):
    """``{dotted key: value}`` of the leaves of a nested config (an empty dict or list is a leaf)."""
    return {k: v for k, v in _walk(obj) if not (isinstance(v, (dict, list)) and v)}


def _describe(value):
    return f"{type(value).__name__} {value!r}"


def _check_type(key, old, new):
    """An override keeps the kind of value the config had (None on either side is always allowed)."""
    if old is None or new is None:
        return
    if isinstance(old, bool):
        ok, want = isinstance(new, bool), "True or False"
    elif isinstance(old, int):
        ok, want = isinstance(new, int) and not isinstance(new, bool), "an integer"
    elif isinstance(old, float):
        ok, want = isinstance(new, (int, float)) and not isinstance(new, bool), "a number"
    elif isinstance(old, str):
        ok, want = isinstance(new, str), "a string"
    elif isinstance(old, (list, tuple)):
        ok, want = isinstance(new, (list, tuple)), "a list"
    elif isinstance(old, dict):
        ok, want = isinstance(new, dict), "a dict"
    else:
        return
    if not ok:
        raise ConfigError(f"--cfg-options {key}: expected {want} (the config has {old!r}), got {_describe(new)}")


class Config(ConfigDict):
    """A loaded config; ``Config.fromfile(path)`` is the usual entry point."""

    @classmethod
    def fromfile(cls, path):
        cfg = cls(_wrap(_load(path, [])))
        object.__setattr__(cfg, "filename", os.path.abspath(path))
        return cfg

    filename = None  # set by fromfile (an attribute, not a config key)

    def merge_options(self, options):
        """Apply ``{'a.b.c': value}`` overrides; string values are parsed as literals.

        A key must exist in the config (list items by index: ``data.train.pipeline.2.img_scale``) and keep
        its kind of value (int, float, bool, str, list, dict; None either way); otherwise ``ConfigError``
        names the key and the closest existing one.  A leading ``+`` adds a key that does not exist yet
        (``+model.decode_head.new_arg=1``), creating missing parent sections.
        """
        for dotted, value in options.items():
            add = dotted.startswith("+")
            key = dotted[1:] if add else dotted
            if isinstance(value, str):
                value = _parse_value(value)
            parts = key.split(".")
            if not key or any(not p for p in parts):
                raise ConfigError(f"--cfg-options: {dotted!r} is not a dotted key")
            node, walked = self, []
            for i, k in enumerate(parts):
                last = i == len(parts) - 1
                where = ".".join(walked) or "the config"
                if isinstance(node, tuple):
                    raise ConfigError(f"--cfg-options {key}: {where} is a tuple {node!r}; give the whole value "
                                      f"({'.'.join(walked)}=...)")
                if isinstance(node, list):
                    try:
                        idx = int(k)
                    except ValueError:
                        idx = None
                    if idx is None or not -len(node) <= idx < len(node):
                        raise ConfigError(f"--cfg-options {key}: {where} is a list of {len(node)} items; "
                                          f"{k!r} is not an index into it")
                    k = idx
                elif not isinstance(node, dict):
                    raise ConfigError(f"--cfg-options {key}: {where} is {_describe(node)}, not a section")
                elif k not in node:
                    if not add:
                        full = ".".join(walked + [k])
                        raise ConfigError(
                            f"--cfg-options {key}: the config has no key {full!r}"
                            f"{did_you_mean(key, dotted_keys(self))}; to add a new key, write +{key}=...")
                    if not last:
                        node[k] = ConfigDict()
                if last:
                    if not add or (isinstance(node, dict) and k in node):
                        _check_type(key, node[k], value)
                    node[k] = _wrap(value)
                else:
                    node = node[k]
                walked.append(str(k))
        return self

    def to_dict(self):
        return {k: _plain(v) for k, v in self.items()}

    def pretty_text(self):
        lines = [f"{k} = {pprint.pformat(v, sort_dicts=False, width=100)}" for k, v in self.to_dict().items()]
        return "\n".join(lines) + "\n"

    def dump(self, path):
        """Write the merged config as a standalone ``.py`` file (atomically)."""
        from .fileio import write_atomic
        write_atomic(path, self.pretty_text())


def parse_cfg_options(items):
    """``['a.b=1', 'c=[1,2]']`` (from argparse) -> ``{'a.b': '1', 'c': '[1,2]'}``."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--cfg-options expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out
