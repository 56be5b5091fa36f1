"""A small registry: ``type`` name in a config dict -> class, and ``build``.

No global config object: a registry only maps names to classes.
"""
import importlib
import inspect

from .config import ConfigError, closest, did_you_mean


class Registry:
    """``autoload``: module imported on the first lookup so that its classes are registered."""

    def __init__(self, name, autoload=None):
        self.name = name
        self._classes = {}
        self._autoload = autoload

    def _load(self):
        if self._autoload:
            module, self._autoload = self._autoload, None
            importlib.import_module(module)

    def __contains__(self, name):
        self._load()
        return name in self._classes

    def names(self):
        self._load()
        return sorted(self._classes)

    def __repr__(self):
        return f"Registry({self.name}: {sorted(self._classes)})"

    def register(self, cls=None, *, name=None):
        """Use as ``@REG.register()`` or ``@REG.register(name='Alias')``."""
        def add(c):
            key = name or c.__name__
            if key in self._classes and self._classes[key] is not c:
                raise KeyError(f"{key!r} is already registered in {self.name}")
            self._classes[key] = c
            return c
        return add(cls) if cls is not None else add

    def remove(self, name):
        """Forget ``name`` (a plugin or a test that registered a class for a while)."""
        self._classes.pop(name, None)

    def get(self, name):
        self._load()
        if name not in self._classes:
            raise ConfigError(f"unknown {self.name} type {name!r}{did_you_mean(str(name), self._classes)}"
                              f"; registered: {', '.join(sorted(self._classes))}")
        return self._classes[name]

    def check(self, cfg, **defaults):
        """What is wrong with ``cfg`` as a config of this registry (unknown type, unknown or missing arguments),
        without building it: ``ConfigError``.  Returns ``(class, arguments)``."""
        if not isinstance(cfg, dict) or "type" not in cfg:
            raise ConfigError(f"{self.name} config must be a dict with a 'type' key, got {cfg!r}")
        args = {k: v for k, v in cfg.items() if k != "type"}
        for k, v in defaults.items():
            args.setdefault(k, v)
        cls = self.get(cfg["type"])
        params, closed = _init_params(cls)
        if closed:
            accepted = list(params)
            unknown = sorted(set(args) - set(params))
            if unknown:
                hints = [f"{k} -> {closest(k, accepted)}" for k in unknown if closest(k, accepted)]
                raise ConfigError(f"{cfg['type']} ({self.name}) got unexpected config keys {unknown}"
                                  + (f" (did you mean {', '.join(hints)}?)" if hints else "")
                                  + f"; accepted: {accepted}")
        required = [n for n, p in params.items() if p.default is p.empty and n not in args]
        if required:
            raise ConfigError(f"{cfg['type']} ({self.name}) needs config keys {required}")
        return cls, args

    def build(self, cfg, **defaults):
        """Instantiate ``cfg['type']`` with the other keys (plus ``defaults``) as arguments."""
        cls, args = self.check(cfg, **defaults)
        return cls(**args)


def _init_params(cls):
    """The keyword arguments ``cls(...)`` accepts, following ``**kwargs`` that are passed on to a base class:
    ``({name: Parameter}, closed)``; ``closed`` is False if some ``**kwargs`` accepts anything."""
    params = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is object:
            return params, True
        sig = inspect.signature(init)
        for name, p in list(sig.parameters.items())[1:]:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                params.setdefault(name, p)
        if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            return params, True
    return params, False


MODELS = Registry("model", autoload="jseg.models")
