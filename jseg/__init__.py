"""jseg: SegNeXt, SegFormer and CGRSeg in Jittor, numerically equal to the official PyTorch code."""
import os as _os

from . import _env

_env.prepare()  # must precede the first `import jittor`

try:
    import jittor as _jt  # noqa: E402
except SystemExit as _exit:  # Jittor rebuilt jit_utils and called sys.exit(0): "please rerun your command"
    _env.restart_after_jit_utils_rebuild(_exit)
finally:
    _env.keep_jittor_config()
_os.environ.pop(_env.RESTART_ENV, None)  # a later rebuild in a child process may restart it too

_jt.flags.python_path = _env.canonical_python()  # one kernel cache for python, python3, python3.X

from .version import __version__  # noqa: E402,F401
from .device import select_device  # noqa: E402,F401  (GPU or CPU: chosen explicitly, see jseg/device.py)
