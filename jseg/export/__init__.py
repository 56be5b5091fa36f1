"""Out of jseg: checkpoints in PyTorch's file format (``torch_zip``), without PyTorch."""
