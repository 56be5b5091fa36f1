"""A small registry: ``type`` name in a config dict -> class, and ``build``.

No global config object: a registry only maps names to classes.
"""
import importlib
import inspect

from .config import ConfigError, closest


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

    def get(self, name):
        self._load()
        if name not in self._classes:
            near = closest(str(name), self._classes)
            raise ConfigError(f"unknown {self.name} type {name!r}" + (f" (did you mean {near!r}?)" if near else "")
                              + f"; registered: {', '.join(sorted(self._classes))}")
        return self._classes[name]

    def build(self, cfg, **defaults):
        """Instantiate ``cfg['type']`` with the other keys (plus ``defaults``) as arguments."""
        if not isinstance(cfg, dict) or "type" not in cfg:
            raise ConfigError(f"{self.name} config must be a dict with a 'type' key, got {cfg!r}")
        args = {k: v for k, v in cfg.items() if k != "type"}
        for k, v in defaults.items():
            args.setdefault(k, v)
        cls = self.get(cfg["type"])
        sig = inspect.signature(cls.__init__)
        accepts_any = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
        if not accepts_any:
            accepted = [p for p in sig.parameters if p != "self"]
            unknown = sorted(set(args) - set(sig.parameters))
            if unknown:
                hints = [f"{k} -> {closest(k, accepted)}" for k in unknown if closest(k, accepted)]
                raise ConfigError(f"{cfg['type']} ({self.name}) got unexpected config keys {unknown}"
                                  + (f" (did you mean {', '.join(hints)}?)" if hints else "")
                                  + f"; accepted: {accepted}")
            required = [n for n, p in sig.parameters.items() if n != "self" and p.default is p.empty
                        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in args]
            if required:
                raise ConfigError(f"{cfg['type']} ({self.name}) needs config keys {required}")
        return cls(**args)


MODELS = Registry("model", autoload="jseg.models")
