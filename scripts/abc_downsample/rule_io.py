"""Glue for rule scripts: log to the rule's log file, report user errors as one line.

The rule log gets everything. The terminal gets only what a user must see, one line each:
this package's warnings (``abc-downsample: warning: ...``), a job's few notices
(``say``), and a user error (``abc-downsample: error: ...``). Library chatter (anndata's
"storing ... as categorical") goes to the log file only.
"""

import errno
import logging
import sys
import threading
from collections.abc import Callable

from abc_downsample.errors import AbcError

log = logging.getLogger("abc_downsample")

PREFIX = "abc-downsample"
_TERMINAL = threading.Lock()  # one line at a time from any thread
QUIET_LIBRARIES = ("anndata",)  # loggers that print INFO chatter to stderr by themselves


class _OneLine(logging.Formatter):
    """``abc-downsample: warning: <message>`` on one line, whatever the message holds."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{PREFIX}: warning: {' '.join(record.getMessage().split())}"


def _package_warnings(record: logging.LogRecord) -> bool:
    return record.levelno == logging.WARNING and record.name.startswith("abc_downsample")


def _terminal_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(_OneLine())
    handler.addFilter(_package_warnings)
    return handler


def _quiet_libraries() -> None:
    """Library records go to the rule log like ours, never straight to the terminal."""
    for name in QUIET_LIBRARIES:
        library = logging.getLogger(name)
        library.handlers[:] = []  # present only if the library is imported already
        library.propagate = True
        library.setLevel(logging.WARNING)  # also holds if it is imported later


def setup_logging(log_path: str | None = None) -> None:
    """Everything to the rule log (or stderr without one); our warnings to the terminal too."""
    handler = logging.FileHandler(log_path, mode="w") if log_path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler, _terminal_handler()] if log_path else [handler]
    root.setLevel(logging.INFO)
    _quiet_libraries()
    logging.captureWarnings(True)


def say(message: str) -> None:
    """One line for the user on the terminal (``abc-downsample: <message>``), and the log."""
    log.info(message)
    with _TERMINAL:  # print() writes the text and its newline apart: threads would mix them
        sys.__stderr__.write(f"{PREFIX}: {message}\n")
        sys.__stderr__.flush()


def quiet_interrupts() -> None:
    """Make an uncaught KeyboardInterrupt (Ctrl-C) print one line instead of a traceback;
    the process still ends by SIGINT, so Snakemake sees an interrupted job."""

    def hook(kind, value, traceback):
        if issubclass(kind, KeyboardInterrupt):
            print(f"{PREFIX}: interrupted", file=sys.__stderr__, flush=True)
        else:
            sys.__excepthook__(kind, value, traceback)

    sys.excepthook = hook


def run(main: Callable[[], None], log_path: str | None = None) -> None:
    """Run a rule's main function; an ``AbcError`` becomes one line and exit status 1."""
    setup_logging(log_path)
    quiet_interrupts()
    try:
        try:
            main()
        except OSError as err:
            raise disk_full(err) or err from None
    except KeyboardInterrupt:
        log.error("interrupted")
        raise
    except AbcError as err:
        message = f"{PREFIX}: error: {err}"
        log.error(message)
        print(message, file=sys.__stderr__, flush=True)
        sys.exit(1)
    except Exception:
        log.exception("unexpected error")
        raise


def disk_full(err: OSError) -> AbcError | None:
    """A full disk or quota, as one line (h5py reports it in its message, not errno)."""
    if err.errno not in (errno.ENOSPC, errno.EDQUOT) and "No space left" not in str(err):
        return None
    where = f" writing {err.filename}" if err.filename else ""
    return AbcError(
        f"the disk is full{where}: free space (or set output.dir or abc.cache_dir on another "
        "disk), then rerun; nothing half-written is kept"
    )
