"""logs/app.log: time, level, pid, module, message. Safe with logrotate's create mode:
WatchedFileHandler reopens the file when its inode changes, in every worker."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s [pid %(process)d] %(name)s: %(message)s"
_MARK = "_emtp_handler"


def setup_logging(app_log: Path, level: str = "INFO") -> logging.Handler | None:
    """Attach one WatchedFileHandler for app_log to the root logger (idempotent per path)."""
    root = logging.getLogger()
    for h in root.handlers:
        if getattr(h, _MARK, None) == str(app_log):
            return h
    try:
        app_log.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.WatchedFileHandler(app_log, encoding="utf-8", delay=False)
    except OSError:
        return None  # a read-only context (e.g. --help); the CLI reports real failures itself
    setattr(handler, _MARK, str(app_log))
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("alembic", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
