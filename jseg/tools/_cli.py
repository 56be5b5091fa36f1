"""What every jseg command does with errors and signals.

* A user error (a config, checkpoint, image, label or path that cannot be used) ends the command
  with one line saying what and which file, and exit status 2 (1 when the machine failed, e.g. a
  full disk).  ``--debug`` or ``JSEG_DEBUG=1`` adds the traceback.  Anything else is a bug in
  jseg and keeps its traceback.
* SIGINT (Ctrl-C) and SIGTERM stop the command through the normal cleanup (workers stopped,
  shared memory freed, no partial files): one line, exit status 130 / 143.  Jittor's own SIGINT
  handler would ``quick_exit`` and skip all of that.
"""
import errno
import os
import signal
import sys
import traceback

from ..errors import Interrupted, UserError


def _on_sigterm(signum, frame):
    raise Interrupted(signum)


def install_signal_handlers():
    """Ctrl-C raises KeyboardInterrupt and SIGTERM raises :class:`Interrupted` in the main thread."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    stop_jittor_compile_pool()


def stop_jittor_compile_pool():
    """Stop the pool of compiler processes Jittor keeps from its import on (idle once imported).

    A terminal's Ctrl-C reaches them too: they died, the pool forked replacements from this
    multi-threaded process (a fork that can deadlock), and the exit then hung on them or was cut
    short by Jittor's SIGCHLD handler.  Jittor starts a new pool if it ever compiles a library again.
    """
    import atexit
    try:
        import jittor_utils as ju
    except ImportError:
        return
    pool = getattr(ju, "p", None)
    if pool is None or not getattr(ju, "pool_size", 0):
        return
    pool.terminate()
    pool.join()
    atexit.unregister(ju.pool_cleanup)
    del ju.p
    ju.pool_size = 0


def debug_requested(argv):
    return "--debug" in (argv or []) or os.environ.get("JSEG_DEBUG", "") not in ("", "0")


def add_debug_flag(parser):
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors (or JSEG_DEBUG=1)")


def _prefix(prog):
    try:
        from .. import dist
        return f"{prog} [rank {dist.rank()}]" if dist.world_size() > 1 else prog
    except Exception:  # before Jittor is usable
        return prog


def one_line(message):
    """A multi-line message (a list of problems) as one line: parts joined with '; '."""
    parts = [p.strip() for p in str(message).splitlines() if p.strip()]
    out = ""
    for p in parts:
        out += p if not out else (" " if out.endswith(":") else "; ") + p
    return out


def _os_error_line(e):
    what = e.strerror or str(e)
    files = [f for f in (e.filename, e.filename2) if f]
    return f"{what}: {' -> '.join(map(str, files))}" if files else what


def run(prog, main, argv=None):
    """Run ``main(argv)`` with the conventions above; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    install_signal_handlers()
    try:
        from ..device import select_device
        select_device("auto")   # the GPU whenever Jittor found one (a command's --device may change it)
        return main(argv)
    except KeyboardInterrupt as e:
        stop = e if isinstance(e, Interrupted) else Interrupted(signal.SIGINT)
        print(f"{_prefix(prog)}: {stop}", file=sys.stderr, flush=True)
        if debug:
            traceback.print_exc()
        return 128 + stop.signum
    except Exception as e:  # noqa: BLE001 -- sorted below: user errors get one line, bugs their traceback
        if isinstance(e, UserError):
            status, line = 2, one_line(e)
        elif isinstance(e, OSError):
            # a path the user gave that cannot be read or written: 2; the machine failing (full disk, I/O): 1
            machine = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.ENOMEM)
            status, line = (1 if machine else 2), _os_error_line(e)
        else:
            raise
        print(f"{_prefix(prog)}: {line}", file=sys.stderr, flush=True)
        if debug:
            traceback.print_exc()
        return status
