"""Colours, Chilean number locale and light/dark Vega-Lite configs (one source for browser and server).

The palette is the one of the existing EMTP reports, reordered so the first two colours (slate blue
and gold) stay distinguishable for every common colour-vision deficiency; the lines of multi-series
charts also differ by dash pattern, so colour is never the only cue.
"""

from __future__ import annotations

PALETTE = ["#34536A", "#C2A869", "#B35A5A", "#3C7F6D", "#6E5F80", "#5A6E79"]
PALETTE_DARK = ["#7FA6C2", "#E0C98A", "#D98A8A", "#6FB7A2", "#A99BC0", "#9AAFBA"]
# Sequential ramp (heat table, single-hue): light to the palette's slate blue.
RAMP = ["#EEF3F6", "#34536A"]
RAMP_DARK = ["#1F2C36", "#7FA6C2"]

# d3-format locale: 1.234.567 and 12,5 % (narrow no-break space before the percent sign).
FORMAT_LOCALE = {
    "decimal": ",",
    "thousands": ".",
    "grouping": [3],
    "currency": ["$", ""],
    "percent": "\u00a0%",
    "minus": "\u2212",
}

# d3-time-format locale (Spanish), used only if a chart ever shows dates.
TIME_FORMAT_LOCALE = {
    "dateTime": "%A, %e de %B de %Y, %X",
    "date": "%d-%m-%Y",
    "time": "%H:%M:%S",
    "periods": ["AM", "PM"],
    "days": ["domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"],
    "shortDays": ["dom", "lun", "mar", "mié", "jue", "vie", "sáb"],
    "months": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
               "octubre", "noviembre", "diciembre"],
    "shortMonths": ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"],
}

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Noto Sans', sans-serif"


def _config(dark: bool) -> dict:
    text = "#E4EBF0" if dark else "#1D2A35"
    muted = "#9FB0BD" if dark else "#5B6B78"
    grid = "#2E3C48" if dark else "#E6EBEF"
    domain = "#4A5A67" if dark else "#C9D2D9"
    palette = PALETTE_DARK if dark else PALETTE
    return {
        "background": None,
        "font": FONT,
        "padding": 6,
        "view": {"stroke": None, "continuousWidth": 560, "continuousHeight": 260},
        "title": {"color": text, "fontSize": 14, "fontWeight": 600, "anchor": "start", "subtitleColor": muted,
                  "subtitleFontSize": 12, "offset": 10},
        "axis": {"labelColor": muted, "titleColor": muted, "gridColor": grid, "domainColor": domain,
                 "tickColor": domain, "labelFontSize": 11.5, "titleFontSize": 12, "titleFontWeight": 500,
                 "labelLimit": 240},
        "legend": {"labelColor": text, "titleColor": muted, "labelFontSize": 12, "titleFontSize": 12,
                   "orient": "top", "symbolStrokeWidth": 2.5},
        "header": {"labelColor": text, "titleColor": muted},
        "range": {"category": palette, "ramp": RAMP_DARK if dark else RAMP, "heatmap": RAMP_DARK if dark else RAMP},
        "mark": {"color": palette[0]},
        "bar": {"color": palette[0], "cornerRadiusEnd": 2},
        "line": {"color": palette[0], "strokeWidth": 2.5},
        "point": {"color": palette[0], "filled": True, "size": 55},
        "text": {"color": text},
        "rule": {"color": muted},
        "locale": {"number": FORMAT_LOCALE, "time": TIME_FORMAT_LOCALE},
    }


LIGHT_CONFIG = _config(dark=False)
DARK_CONFIG = _config(dark=True)
# The server renders downloads with a white background.
EXPORT_CONFIG = {**LIGHT_CONFIG, "background": "#ffffff"}


def client_settings() -> dict:
    """What dashboards.js needs to draw charts the same way the server renders downloads."""
    return {
        "light": LIGHT_CONFIG,
        "dark": DARK_CONFIG,
        "formatLocale": FORMAT_LOCALE,
        "timeFormatLocale": TIME_FORMAT_LOCALE,
    }
