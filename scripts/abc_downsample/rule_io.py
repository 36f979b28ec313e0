"""Glue for rule scripts: log to the rule's log file, report user errors as one line."""

import logging
import sys
from collections.abc import Callable

from .errors import AbcError

log = logging.getLogger("abc_downsample")


def setup_logging(log_path: str | None = None) -> None:
    """Send this package's log records (and warnings) to the rule log, or stderr."""
    handler = logging.FileHandler(log_path, mode="w") if log_path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)


def quiet_interrupts() -> None:
    """Make an uncaught KeyboardInterrupt (Ctrl-C) print one line instead of a traceback;
    the process still ends by SIGINT, so Snakemake sees an interrupted job."""

    def hook(kind, value, traceback):
        if issubclass(kind, KeyboardInterrupt):
            print("abc-downsample: interrupted", file=sys.__stderr__, flush=True)
        else:
            sys.__excepthook__(kind, value, traceback)

    sys.excepthook = hook


def run(main: Callable[[], None], log_path: str | None = None) -> None:
    """Run a rule's main function; an ``AbcError`` becomes one line and exit status 1."""
    setup_logging(log_path)
    quiet_interrupts()
    try:
        main()
    except KeyboardInterrupt:
        log.error("interrupted")
        raise
    except AbcError as err:
        message = f"abc-downsample: error: {err}"
        log.error(message)
        print(message, file=sys.__stderr__, flush=True)
        sys.exit(1)
    except Exception:
        log.exception("unexpected error")
        raise
