"""The maintenance log (logs/MANTENIMIENTO.log), one line per operator action.

Format: ``[YYYY-MM-DD HH:MM] - mensaje - TI: operador``.
"""

from __future__ import annotations

import os
from datetime import datetime


def append_maintenance_line(paths, message: str, operator: str) -> str:
    """Append one line to ``paths.maintenance_log`` with a single O_APPEND write; returns the line."""
    message = " ".join(str(message).split())  # one line, no control characters
    operator = " ".join(str(operator or "desconocido").split()) or "desconocido"
    line = f"[{datetime.now().strftime('%Y-%m-%d %H:%M')}] - {message} - TI: {operator}\n"
    path = paths.maintenance_log
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    return line.rstrip("\n")
