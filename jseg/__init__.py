"""jseg: SegNeXt, SegFormer and CGRSeg in Jittor, numerically equal to the official PyTorch code."""
from . import _env

_env.prepare()  # must precede the first `import jittor`

import jittor as _jt  # noqa: E402

_jt.flags.python_path = _env.canonical_python()  # one kernel cache for python, python3, python3.X

from .version import __version__  # noqa: E402,F401
from .device import select_device  # noqa: E402,F401  (GPU or CPU: chosen explicitly, see jseg/device.py)
