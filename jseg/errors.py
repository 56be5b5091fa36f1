"""The two kinds of stop every jseg command reports in one line instead of a traceback.

``UserError``: input that cannot be used (a config, checkpoint, image, label, path or argument);
the message names the file or key, says what was expected and what to do.  Commands exit with 2.
``Interrupted``: SIGINT or SIGTERM; ``detail`` says what was kept.  Commands exit with 128 + signal.
"""
import signal


class UserError(ValueError):
    """Input that cannot be used; the message names the file or key."""


class UsageError(UserError):
    """A command-line value that cannot be used."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread; ``detail`` says what was kept (e.g. the last checkpoint)."""

    def __init__(self, signum=signal.SIGINT, detail=""):
        super().__init__(signum, detail)
        self.signum = int(signum)
        self.detail = detail

    def __str__(self):
        return f"stopped by {signal.Signals(self.signum).name}" + (f"; {self.detail}" if self.detail else "")
