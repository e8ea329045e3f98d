"""Aggregation latency: the queries one dashboard page makes, at 1 and at 11 years of data.

Two measurements, both with every cube cache emptied before each page ("cold"):

* the fixed set of 11 queries used since the first version of this benchmark, under 7 filter
  combinations over all the years (the heaviest case: nothing narrows to one year);
* the queries each real dashboard page makes (recorded from ``charts.pages`` builders plus
  the dropdown options), under the default view (last year) and several filters.

Usage: .venv/bin/python bench/bench_cube.py [--no-write] [--reps N] [--baseline REV] [--json FILE]
(writes docs/RENDIMIENTO_DATOS.md, section "cubo", unless --no-write). ``--baseline REV`` first
runs this same benchmark on ``git archive REV src`` in a subprocess, so the table compares both
implementations measured in the same run (same machine load).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refresh import machine, write_section  # noqa: E402

from visualizador_emtp.charts import pages  # noqa: E402
from visualizador_emtp.data import demo  # noqa: E402
from visualizador_emtp.data.cube import Cube, CubeBuilder, Filters  # noqa: E402

QUERIES = ("count", "schools", "kpis", "school_table", "school_detail", "options")


def page_queries(c: Cube, f: Filters) -> None:
    """Fixed set: KPIs, evolution, by gender, region, sector, top specialties, dependencia,
    Dual by year, schools by year, comunas, dropdown options."""
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


def clear(c: Cube) -> None:
    """Empty every cache of the cube (results and, when the engine has them, selections)."""
    if hasattr(c, "clear_cache"):
        c.clear_cache()
    else:  # the pyarrow implementation before the numpy engine (comparisons with --no-write)
        c._cache.clear()


class Recorder:
    """Stands in for a Cube in the page builders and records the queries they make."""

    def __init__(self, cube: Cube):
        self._cube = cube
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name):
        target = getattr(self._cube, name)
        if name not in QUERIES:
            return target

        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return target(*args, **kwargs)
        return call


def record_pages(c: Cube, filters: list[Filters]) -> dict[str, list[list[tuple[str, tuple, dict]]]]:
    """{page: [queries of the page under each filter]}; every page also builds its dropdowns."""
    out: dict[str, list] = {}
    for f in filters:
        for name, build in pages.BUILDERS.items():
            rec = Recorder(c)
            view, _ = pages.make_view(rec, f)
            build(rec, view)
            rec.options(view.filters)
            out.setdefault(name, []).append(rec.calls)
    return out


def replay(c: Cube, calls) -> float:
    clear(c)
    t0 = time.perf_counter()
    for name, args, kwargs in calls:
        getattr(c, name)(*args, **kwargs)
    return (time.perf_counter() - t0) * 1000


def measure(c: Cube, filters: list[Filters], reps: int, cold: bool) -> tuple[np.ndarray, np.ndarray]:
    page, single = [], []
    for _ in range(reps):
        for f in filters:
            if cold:
                clear(c)
            t0 = time.perf_counter()
            page_queries(c, f)
            page.append(time.perf_counter() - t0)
            if cold:
                clear(c)
            t1 = time.perf_counter()
            c.count(f, ["COD_SEC", "GEN_ALU"])
            single.append(time.perf_counter() - t1)
    return np.array(page) * 1000, np.array(single) * 1000


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_baseline(rev: str, reps: int) -> dict:
    """Results of this benchmark on the ``src`` tree of git revision ``rev`` (subprocess)."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        tar = subprocess.run(["git", "archive", rev, "src"], cwd=root, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            tf.extractall(tmp)
        out = Path(tmp) / "out.json"
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "src")}
        subprocess.run([sys.executable, __file__, "--no-write", "--reps", str(reps), "--json", str(out)],
                       env=env, check=True)
        return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--baseline", help="git revision to compare with (measured in the same run)")
    ap.add_argument("--json", help="also write p50/p95 as JSON to this file")
    args = ap.parse_args()
    base = None
    if args.baseline:
        print(f"baseline {args.baseline}:", flush=True)
        base = run_baseline(args.baseline, args.reps)
        print("current:", flush=True)
    filters_for = lambda ys: [  # noqa: E731
        Filters(years=ys), Filters(years=ys, regions=(13,)), Filters(years=ys, tipo="jovenes", generos=(2,)),
        Filters(years=ys, sectores=(520, 530)), Filters(years=ys, regions=(8, 16), rural=1),
        Filters(years=ys, dependencias=(5,), especialidades=(41005,)), Filters(years=(ys[-1],), comunas=(13101,)),
    ]
    # dashboard selections: default view (last year), with filters, and a range of years
    view_filters = [Filters(), Filters(regions=(13,)), Filters(sectores=(520, 530)), Filters(tipo="adultos"),
                    Filters(generos=(2,), dependencias=(5,)), Filters(regions=(8,), rural=1)]
    rows, page_rows = [], []
    for label, years in (("1 año (2025)", (2025,)), ("11 años (2015–2025)", tuple(range(2015, 2026)))):
        b = CubeBuilder()
        n = 0
        for t in demo.generate(years):
            b.add(t)
            n += len(t)
        tables = b.finish()
        t0 = time.perf_counter()
        c = Cube(tables)
        load_ms = (time.perf_counter() - t0) * 1000
        del b
        fs = filters_for(years)
        cold_page, cold_single = measure(c, fs, args.reps, cold=True)
        measure(c, fs, 1, cold=False)  # warm-up fills the result cache
        warm_page, _ = measure(c, fs, args.reps, cold=False)
        sizes = {f"cube_{k[5:]}" if k.startswith("cube_") else k: len(t) for k, t in tables.items()}
        sizes = {r.name: r.rows for r in c._order} if hasattr(c, "_order") else sizes
        mem = getattr(c, "nbytes", None)
        rows.append((label, n, sizes, cold_page, cold_single, warm_page, load_ms, mem))
        print(label, f"fixed set: page p50 {np.percentile(cold_page, 50):.2f} ms p95 "
              f"{np.percentile(cold_page, 95):.2f} ms; single p95 {np.percentile(cold_single, 95):.3f} ms; "
              f"warm p95 {np.percentile(warm_page, 95):.3f} ms; Cube() {load_ms:.0f} ms", flush=True)
        vf = view_filters + [Filters(years=years)] if len(years) > 1 else view_filters
        recorded = record_pages(c, vf)
        for name, per_filter in recorded.items():
            times = [replay(c, calls) for _ in range(args.reps) for calls in per_filter]
            n_q = sum(len(calls) for calls in per_filter) / len(per_filter)
            page_rows.append((label, name, n_q, np.array(times)))
            print(f"  page {name:16s} {n_q:4.1f} queries: p50 {np.percentile(times, 50):.2f} ms "
                  f"p95 {np.percentile(times, 95):.2f} ms", flush=True)
        all_pages = np.concatenate([t for lab, _, _, t in page_rows if lab == label])
        page_rows.append((label, "todas", None, all_pages))
        print(f"  all pages: p50 {np.percentile(all_pages, 50):.2f} ms p95 {np.percentile(all_pages, 95):.2f} ms")
    print(f"max RSS {rss_mb():.0f} MB")
    pct = {"fixed": {label: [float(np.percentile(cp, 50)), float(np.percentile(cp, 95))]
                     for label, _, _, cp, *_ in rows},
           "pages": {f"{label}|{name}": [float(np.percentile(t, 50)), float(np.percentile(t, 95))]
                     for label, name, _, t in page_rows}}
    if args.json:
        Path(args.json).write_text(json.dumps(pct))
    if args.no_write:
        return

    def f(x):
        return f"{x:.2f}".replace(".", ",")

    def thousands(x):
        return f"{x:,}".replace(",", ".")

    body = ["## Agregación (cubo) — `bench/bench_cube.py`", "", f"Máquina: {machine()}", "",
            "Todas las mediciones son «en frío»: antes de cada página se vacían todas las cachés del cubo "
            "(resultados y selecciones de filas), el peor caso de una página con filtros nuevos.", "",
            "### Conjunto fijo de 11 consultas, todos los años", "",
            "Una «página» = KPIs, evolución, género, región, sector, especialidad, dependencia, Dual, "
            "establecimientos por año, comunas y opciones de filtros, con 7 combinaciones de filtros sobre "
            f"todos los años disponibles × {args.reps} repeticiones. «Caliente» = repitiendo consultas ya hechas "
            "(caché de resultados).", "",
            "| datos | filas de estudiantes | filas del cubo base | página fría p50 | página fría p95 | "
            "1 consulta fría p95 | página caliente p95 |" + (" antes: p50 / p95 |" if base else ""),
            "|---|---|---|---|---|---|---|" + ("---|" if base else "")]
    for label, n, sizes, cp, cs, wp, _, _ in rows:
        before = ""
        if base and label in base["fixed"]:
            b50, b95 = base["fixed"][label]
            before = f" {f(b50)} / {f(b95)} ms |"
        body.append(f"| {label} | {thousands(n)} | {thousands(sizes['escuela'])} | {f(np.percentile(cp, 50))} ms | "
                    f"**{f(np.percentile(cp, 95))} ms** | {f(np.percentile(cs, 95))} ms | "
                    f"{f(np.percentile(wp, 95))} ms |" + before)
    body += ["", "### Consultas de cada tablero", "",
             "Las consultas que hace cada página real (registradas desde `charts/pages.py`, más las opciones de "
             "los filtros), con la vista por defecto (último año) y 5 filtros más"
             " (a 11 años, también el rango completo de años), "
             f"× {args.reps} repeticiones.", "",
             "| datos | página | consultas | p50 | p95 |" + (" antes: p50 / p95 |" if base else ""),
             "|---|---|---|---|---|" + ("---|" if base else "")]
    for label, name, n_q, times in page_rows:
        nq = "—" if n_q is None else f"{n_q:.0f}"
        shown = "**todas**" if name == "todas" else name
        before = ""
        if base and f"{label}|{name}" in base["pages"]:
            b50, b95 = base["pages"][f"{label}|{name}"]
            before = f" {f(b50)} / {f(b95)} ms |"
        body.append(f"| {label} | {shown} | {nq} | {f(np.percentile(times, 50))} ms | "
                    f"{f(np.percentile(times, 95))} ms |" + before)
    label, n, sizes, *_, load_ms, mem = rows[-1]
    mem_mb = f"{(mem or 0) / 2**20:.1f}".replace(".", ",")
    sizes_line = "Rollups a 11 años (filas): " + ", ".join(
        f"{k} {thousands(v)}" for k, v in sorted(sizes.items(), key=lambda kv: kv[1])) + "."
    if mem:
        sizes_line += (f" Memoria de las consultas: {mem_mb} MB de arreglos numpy; armar el cubo en memoria toma "
                       f"{load_ms:.0f} ms al cargar una versión.")
    body += ["", sizes_line]
    if base:
        body += ["", f"«Antes» = la misma medición, en la misma ejecución, con `src/` de la revisión "
                     f"`{args.baseline}` (consultas con `pyarrow` `group_by`/`filter` sobre los rollups)."]
    body += ["", "Cómo: cada rollup se guarda como posiciones enteras pequeñas (uint8/uint16) de cada dimensión y "
             "medidas enteras compactas (`cube_engine.py`); las filas que deja un filtro se calculan una vez por "
             "rollup y filtros y las reutilizan las ~10 consultas de la página (un año o un rango de años es un "
             "tramo contiguo, sin recorrer filas); las agrupaciones son `np.bincount` sobre una clave combinada; "
             "cada consulta usa el rollup más barato que la cubre, incluido `escuela_oferta` (escuela × año × "
             "especialidad, sin grado ni género), que se arma al cargar la versión."]
    write_section("cubo", "\n".join(body))


if __name__ == "__main__":
    main()
