"""Chilean number formatting for messages: 1.234.567 and 12,5 %."""

from __future__ import annotations


def fmt_int(n: int | float) -> str:
    return f"{int(round(n)):,}".replace(",", ".")


def fmt_num(x: float, decimals: int = 1) -> str:
    s = f"{x:,.{decimals}f}"
    return s.replace(",", "\0").replace(".", ",").replace("\0", ".")


def fmt_pct(x: float, decimals: int = 1) -> str:
    return f"{fmt_num(x, decimals)} %"


def fmt_seconds(s: float) -> str:
    return f"{fmt_num(s, 1)} s"
