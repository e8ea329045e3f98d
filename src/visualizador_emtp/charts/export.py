"""Excel (.xlsx) export of a page: one sheet per chart table and per page table, plus the selection."""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Any

import xlsxwriter

from visualizador_emtp.charts.pages import Column, PageData, View
from visualizador_emtp.data import catalog


def describe_filters(v: View) -> list[tuple[str, str]]:
    f = v.filters
    years = f"{v.years[0]}–{v.years[-1]}" if len(v.years) > 1 else str(v.last_year)

    def names(column: str, codes) -> str:
        return ", ".join(catalog.label(column, c) for c in codes) if codes else "Todas"

    return [
        ("Años", years),
        ("Región", names("COD_REG_RBD", f.regions)),
        ("Comuna", names("COD_COM_RBD", f.comunas)),
        ("Dependencia", names("COD_DEPE2", f.dependencias)),
        ("Zona", {None: "Urbana y rural", 0: "Urbana", 1: "Rural"}[f.rural]),
        ("Rama", names("COD_RAMA", f.ramas)),
        ("Sector", names("COD_SEC", f.sectores)),
        ("Especialidad", names("COD_ESPE", f.especialidades)),
        ("Género", {(): "Hombres y mujeres", (1,): "Hombres", (2,): "Mujeres"}.get(f.generos, "Todos")),
        ("Jóvenes / adultos", {None: "Jóvenes y adultos", "jovenes": "Jóvenes", "adultos": "Adultos"}[f.tipo]),
        ("Grado / nivel", ", ".join(catalog.GRADOS.get(g, str(g)) for g in f.grados) if f.grados else "Todos"),
    ]


def _sheet_name(title: str, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", " ", title)[:28].strip() or "Hoja"
    name, i = base, 2
    while name.lower() in used:
        name = f"{base[:26]} {i}"
        i += 1
    used.add(name.lower())
    return name


def workbook(pd: PageData, v: View, page_title: str, data_date: str = "", source: str = "") -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    bold = wb.add_format({"bold": True})
    head = wb.add_format({"bold": True, "bg_color": "#34536A", "font_color": "#FFFFFF", "border": 1})
    title = wb.add_format({"bold": True, "font_size": 13})
    fmt = {"int": wb.add_format({"num_format": "#,##0"}), "pct": wb.add_format({"num_format": "0.0%"}),
           "signed": wb.add_format({"num_format": "+0.0%;-0.0%;0.0%"}), "text": None}
    used: set[str] = set()

    ws = wb.add_worksheet(_sheet_name("Filtros", used))
    ws.write(0, 0, f"Visualizador EMTP · {page_title}", title)
    ws.write(1, 0, f"Exportado el {datetime.now().strftime('%d-%m-%Y %H:%M')}")
    if data_date:
        ws.write(2, 0, f"Datos actualizados al {data_date}" + (f" · fuente: {source}" if source else ""))
    r = 4
    ws.write(r, 0, "Filtro", bold)
    ws.write(r, 1, "Valor", bold)
    for label, value in describe_filters(v):
        r += 1
        ws.write(r, 0, label)
        ws.write(r, 1, value)
    if pd.page == "establecimiento":
        s = pd.extra["school"]
        r += 2
        ws.write(r, 0, "Establecimiento", bold)
        ws.write(r, 1, f"{s['RBD']} · {s.get('NOM_RBD') or ''}")
    ws.set_column(0, 0, 22)
    ws.set_column(1, 1, 60)

    def table(name: str, subtitle: str, columns: list[Column], rows: list[dict[str, Any]]) -> None:
        sh = wb.add_worksheet(_sheet_name(name, used))
        sh.write(0, 0, name, title)
        if subtitle:
            sh.write(1, 0, subtitle)
        for j, (_, header, _) in enumerate(columns):
            sh.write(3, j, header, head)
        for i, row in enumerate(rows, start=4):
            for j, (key, _, kind) in enumerate(columns):
                val = row.get(key)
                if val is None:
                    continue
                if kind == "text":
                    sh.write_string(i, j, str(val))
                else:
                    sh.write_number(i, j, float(val), fmt[kind])
        for j, (key, header, kind) in enumerate(columns):
            width = max([len(header)] + [len(str(r.get(key) or "")) for r in rows[:200]]) + 2
            sh.set_column(j, j, min(max(width, 8), 60))
        sh.freeze_panes(4, 1 if columns and columns[0][2] == "text" else 0)
        if rows:
            sh.autofilter(3, 0, 3 + len(rows), len(columns) - 1)

    for c in pd.charts:
        table(c.title, c.subtitle, c.columns, c.table_rows)
    for t in pd.tables:
        table(t.title.split(" · ")[0], t.title, t.columns, t.rows)
    wb.close()
    return buf.getvalue()
