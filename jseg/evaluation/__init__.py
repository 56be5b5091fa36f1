from .metrics import confusion_areas, summarize, format_table  # noqa: F401
