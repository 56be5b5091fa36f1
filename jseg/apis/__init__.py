"""High-level inference API: ``init_model`` and ``inference_model``."""
from .inference import inference_model, init_model  # noqa: F401
