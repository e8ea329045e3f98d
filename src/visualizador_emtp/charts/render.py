"""Server-side rendering of chart downloads (PNG, SVG) with vl-convert, and CSV of chart data."""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Sequence

import vl_convert as vlc

from visualizador_emtp.charts import specs
from visualizador_emtp.charts.theme import EXPORT_CONFIG, FORMAT_LOCALE, TIME_FORMAT_LOCALE


def to_svg(spec: dict[str, Any]) -> str:
    return vlc.vegalite_to_svg(specs.for_export(spec), config=EXPORT_CONFIG, format_locale=FORMAT_LOCALE,
                               time_format_locale=TIME_FORMAT_LOCALE)


def to_png(spec: dict[str, Any], scale: float = 2.0) -> bytes:
    return vlc.vegalite_to_png(specs.for_export(spec), config=EXPORT_CONFIG, format_locale=FORMAT_LOCALE,
                               time_format_locale=TIME_FORMAT_LOCALE, scale=scale)


def to_csv(columns: Sequence[tuple[str, str, str]], rows: Iterable[dict[str, Any]]) -> bytes:
    """CSV for spreadsheets in Chile: ';' separator, decimal comma, UTF-8 with BOM (Excel opens it)."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    w.writerow([title for _, title, _ in columns])
    for r in rows:
        out = []
        for key, _, kind in columns:
            v = r.get(key)
            if v is None:
                out.append("")
            elif kind == "pct":
                out.append(f"{float(v) * 100:.1f}".replace(".", ","))
            elif kind == "int":
                out.append(str(int(v)))
            else:
                out.append(str(v))
        w.writerow(out)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
