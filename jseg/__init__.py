"""jseg: SegNeXt, SegFormer and CGRSeg in Jittor, numerically equal to the official PyTorch code."""
from . import _env

_env.prepare()  # must precede the first `import jittor`

import jittor as _jt  # noqa: E402

_jt.flags.python_path = _env.canonical_python()  # one kernel cache for python, python3, python3.X

from .version import __version__  # noqa: E402,F401

# Use the GPU whenever Jittor found one.  Set before any model is built: Jittor
# picks its CUDA depthwise-conv kernel when nn.Conv2d is constructed.
if _jt.has_cuda:
    _jt.flags.use_cuda = 1
