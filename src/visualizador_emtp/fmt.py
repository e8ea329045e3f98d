"""Chilean number, size and date formatting for every layer (UI, CLI, logs): 1.234.567 and 12,5 %."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

try:
    CHILE_TZ = ZoneInfo("America/Santiago")
except Exception:  # pragma: no cover - no tz database
    CHILE_TZ = None


def miles(value, decimals: int = 0) -> str:
    """1234567 → '1.234.567'; 1234.5 with decimals=1 → '1.234,5'."""
    if value is None or value == "":
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    text = f"{number:,.{decimals}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def pct(value, decimals: int = 1, ratio: bool = False) -> str:
    """12.5 → '12,5 %' (ratio=True: 0.125 → '12,5 %')."""
    if value is None:
        return "–"
    try:
        number = float(value) * (100 if ratio else 1)
    except (TypeError, ValueError):
        return str(value)
    return f"{miles(number, decimals)} %"


def signed_pct(value, decimals: int = 1) -> str:
    if value is None:
        return "–"
    sign = "+" if value > 0 else ("−" if value < 0 else "")
    return f"{sign}{miles(abs(value), decimals)} %"


def local_dt(value: datetime | str | None, fmt: str = "%d-%m-%Y %H:%M") -> str:
    if value in (None, ""):
        return "–"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is not None and CHILE_TZ is not None:
        value = value.astimezone(CHILE_TZ)
    return value.strftime(fmt)


def seconds(value: float) -> str:
    return f"{miles(value, 1)} s"


def human_size(n: float) -> str:
    """Bytes in Spanish notation: '512 B', '1,5 KB', '12,3 MB', '2,0 GB'."""
    n = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{miles(n)} B" if unit == "B" else f"{miles(n, 1)} {unit}"
        n /= 1024
    return f"{miles(n, 1)} TB"  # pragma: no cover
