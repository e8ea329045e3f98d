"""Aggregation latency: the queries one dashboard page makes, at 1 and at 11 years of data.

Usage: .venv/bin/python bench/bench_cube.py   (writes docs/RENDIMIENTO_DATOS.md, section "cubo")
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refresh import machine, write_section  # noqa: E402

from visualizador_emtp.data import demo  # noqa: E402
from visualizador_emtp.data.cube import Cube, CubeBuilder, Filters  # noqa: E402


def page_queries(c: Cube, f: Filters) -> None:
    """Matrícula page: KPIs, evolution, by gender, region, sector, top specialties, dependencia,
    schools by year, comuna map, school table, dropdown options."""
    c.kpis(f)
    c.count(f, ["AGNO"])
    c.count(f, ["AGNO", "GEN_ALU"])
    c.count(f, ["COD_REG_RBD"])
    c.count(f, ["COD_SEC", "GEN_ALU"])
    c.count(f, ["COD_ESPE"])
    c.count(f, ["COD_DEPE2"])
    c.count(f, ["AGNO", "TIPO"], measures=("n", "n_dual"))
    c.schools(f, ["AGNO"])
    c.count(f, ["COD_COM_RBD"])
    c.options(f)


def measure(c: Cube, filters: list[Filters], reps: int, cold: bool) -> tuple[np.ndarray, np.ndarray]:
    page, single = [], []
    for _ in range(reps):
        for f in filters:
            if cold:
                c._cache.clear()
            t0 = time.perf_counter()
            page_queries(c, f)
            page.append(time.perf_counter() - t0)
            if cold:
                c._cache.clear()
            t1 = time.perf_counter()
            c.count(f, ["COD_SEC", "GEN_ALU"])
            single.append(time.perf_counter() - t1)
    return np.array(page) * 1000, np.array(single) * 1000


def main() -> None:
    filters_for = lambda ys: [  # noqa: E731
        Filters(years=ys), Filters(years=ys, regions=(13,)), Filters(years=ys, tipo="jovenes", generos=(2,)),
        Filters(years=ys, sectores=(520, 530)), Filters(years=ys, regions=(8, 16), rural=1),
        Filters(years=ys, dependencias=(5,), especialidades=(41005,)), Filters(years=(ys[-1],), comunas=(13101,)),
    ]
    rows = []
    for label, years in (("1 año (2025)", (2025,)), ("11 años (2015–2025)", tuple(range(2015, 2026)))):
        b = CubeBuilder()
        n = 0
        for t in demo.generate(years):
            b.add(t)
            n += len(t)
        c = Cube(b.finish())
        fs = filters_for(years)
        cold_page, cold_single = measure(c, fs, 15, cold=True)
        measure(c, fs, 1, cold=False)  # warm-up fills the result cache
        warm_page, _ = measure(c, fs, 15, cold=False)
        sizes = {r.name: r.rows for r in c._order}
        rows.append((label, n, sizes, cold_page, cold_single, warm_page))
        print(label, f"page p50 {np.percentile(cold_page, 50):.2f} ms p95 {np.percentile(cold_page, 95):.2f} ms; "
              f"single p95 {np.percentile(cold_single, 95):.3f} ms; warm p95 {np.percentile(warm_page, 95):.3f} ms")
    def f(x):
        return f"{x:.2f}".replace(".", ",")
    body = ["## Agregación (cubo) — `bench/bench_cube.py`", "", f"Máquina: {machine()}", "",
            "Una «página» = las 11 consultas del tablero de Matrícula (KPIs, evolución, género, región, sector, "
            "especialidad, dependencia, Dual, establecimientos por año, comunas, opciones de filtros), con 7 "
            "combinaciones de filtros × 15 repeticiones. «Fría» = sin caché de resultados (el peor caso); "
            "«caliente» = repitiendo consultas ya hechas.", "",
            "| datos | filas de estudiantes | filas del cubo base | página fría p50 | página fría p95 | "
            "1 consulta fría p95 | página caliente p95 |", "|---|---|---|---|---|---|---|"]
    for label, n, sizes, cp, cs, wp in rows:
        body.append(f"| {label} | {n:,}".replace(",", ".") + f" | {sizes['escuela']:,}".replace(",", ".")
                    + f" | {f(np.percentile(cp, 50))} ms | {f(np.percentile(cp, 95))} ms | "
                      f"{f(np.percentile(cs, 95))} ms | {f(np.percentile(wp, 95))} ms |")
    body += ["", "Tamaño de los rollups a 11 años (filas): " + ", ".join(
        f"{k} {v:,}".replace(",", ".") for k, v in sorted(rows[-1][2].items(), key=lambda kv: kv[1])) + "."]
    write_section("cubo", "\n".join(body))


if __name__ == "__main__":
    main()
