"""Refresh throughput (ODBC and CSV, ~170.000 rows) and peak RSS while refreshing 10.000.000 rows.

Usage: .venv/bin/python bench/bench_refresh.py [--big-rows 10000000] [--skip-odbc]
Needs PostgreSQL (pg_ctlcluster 15 main start) + odbc-postgresql for the ODBC part.
Writes docs/RENDIMIENTO_DATOS.md, section "refresh".
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from visualizador_emtp.data import demo  # noqa: E402
from visualizador_emtp.data.schema import SCHEMA  # noqa: E402

ADMIN = str(Path(sys.executable).parent / "emtp-admin")

# --- results file (shared with bench_cube.py) -------------------------------------------------
import platform  # noqa: E402
from datetime import datetime  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "RENDIMIENTO_DATOS.md"
HEADER = """# Rendimiento de la capa de datos

Resultados reales generados por `bench/bench_refresh.py` y `bench/bench_cube.py` (no son
aserciones con tiempo: se registran para comparar entre versiones). Cada sección indica la
máquina y la fecha en que se midió. Para repetir: `.venv/bin/python bench/bench_refresh.py` y
`.venv/bin/python bench/bench_cube.py`.
"""


def machine() -> str:
    load = os.getloadavg()[0]
    return (f"{platform.node()} · {os.cpu_count()} CPU · Python {platform.python_version()} · "
            f"carga media al medir {load:.1f} · {datetime.now():%Y-%m-%d %H:%M}")


def write_section(name: str, body: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else HEADER
    start, end = f"<!-- {name}:inicio -->", f"<!-- {name}:fin -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        a = text.index(start)
        b = text.index(end) + len(end)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text, encoding="utf-8")


def new_home(base: Path, name: str, extra: str = "") -> Path:
    h = base / name
    (h / "config").mkdir(parents=True)
    (h / "config/visualizador-emtp.toml").write_text("[security]\nbcrypt_rounds = 4\n" + extra)
    subprocess.run([ADMIN, "--home", str(h), "init"], check=True, capture_output=True)
    return h


def run_refresh(home: Path, *args: str) -> tuple[float, int]:
    """(seconds, peak RSS of the child in MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    r = subprocess.run([ADMIN, "--home", str(home), "refresh", *args], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"refresh falló: {r.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return dt, max(peak, before) // 1024


def rss_child(home: Path, *args: str) -> tuple[float, float]:
    """Run refresh under /usr/bin/time-like accounting via wait4."""
    t0 = time.perf_counter()
    p = subprocess.Popen([ADMIN, "--home", str(home), "refresh", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"refresh falló: {p.stderr.read().decode()}")
    return dt, usage.ru_maxrss / 1024


def table_2025() -> pa.Table:
    return next(iter(demo.generate((2025,), 1)))


def bench_csv(base: Path, t: pa.Table) -> tuple[int, float, float]:
    path = base / "matricula_2025_WEB.csv"
    cols = t.column_names + ["ESTADO_ESTAB"]
    with open(path, "w", encoding="latin-1", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(cols)
        d = t.to_pydict()
        for i in range(len(t)):
            w.writerow([("" if d[c][i] is None else d[c][i]) for c in t.column_names] + [1])
    home = new_home(base, "csv")
    dt, rss = rss_child(home, "--source", "csv", "--path", str(path))
    return len(t), dt, rss


def bench_odbc(base: Path, t: pa.Table) -> tuple[int, float, float]:
    import psycopg
    name = "emtp_bench_" + secrets.token_hex(3)
    pwd = secrets.token_urlsafe(10)
    psql = lambda sql: subprocess.run(["su", "postgres", "-c", f"psql -qc \"{sql}\""], check=True,  # noqa: E731
                                      capture_output=True)
    psql(f"CREATE ROLE {name} LOGIN PASSWORD '{pwd}'")
    psql(f"CREATE DATABASE {name} OWNER {name}")
    try:
        cols = [c for c in t.column_names]
        ddl = ", ".join(f"{c.lower()} {'text' if c.startswith('NOM') else 'bigint'}" for c in cols)
        with psycopg.connect(host="127.0.0.1", dbname=name, user=name, password=pwd) as con:
            con.execute("CREATE SCHEMA dbo")
            con.execute(f"CREATE TABLE dbo.matricula_alumno ({ddl}, estado_estab integer)")
            d = t.to_pydict()
            with con.cursor().copy(f"COPY dbo.matricula_alumno ({', '.join(c.lower() for c in cols)}, "
                                   f"estado_estab) FROM STDIN") as cp:
                for i in range(len(t)):
                    cp.write_row([d[c][i] for c in cols] + [1])
        cs = (f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT=5432;DATABASE={name};"
              f"UseDeclareFetch=1;Fetch=10000")
        home = new_home(base, "odbc", f'\n[sqlserver]\nconnection_string = "{cs}"\n')
        cred = home / "config/sqlserver_credentials"
        cred.write_text(f"UID={name}\nPWD={pwd}\n")
        os.chmod(cred, 0o600)
        dt, rss = rss_child(home, "--source", "sqlserver")
        return len(t), dt, rss
    finally:
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        psql(f"DROP ROLE IF EXISTS {name}")


def bench_big(base: Path, target_rows: int) -> tuple[int, float, float, int]:
    path = base / "grande.parquet"
    years = list(demo.generate(tuple(range(2015, 2026)), 3))
    n = 0
    shift = 0
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as w:
        while n < target_rows:
            for t in years:
                t2 = t.set_column(0, SCHEMA.field("AGNO"), pa.array([t["AGNO"][0].as_py() - 2015 + 2004 + shift] * len(t),
                                                      pa.int16()))
                take = min(len(t2), target_rows - n)
                w.write_table(t2.slice(0, take))
                n += take
                if n >= target_rows:
                    break
            shift += 11
    home = new_home(base, "big")
    dt, rss = rss_child(home, "--source", "parquet", "--path", str(path))
    return n, dt, rss, path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-rows", type=int, default=10_000_000)
    ap.add_argument("--skip-odbc", action="store_true")
    a = ap.parse_args()
    fmt = lambda x: f"{x:,.0f}".replace(",", ".")  # noqa: E731
    dec = lambda x: f"{x:.1f}".replace(".", ",")  # noqa: E731
    lines = ["## Actualización — `bench/bench_refresh.py`", "", f"Máquina: {machine()}", "",
             "Cada medición ejecuta `emtp-admin refresh` completo en un proceso aparte (lectura, validación, "
             "escritura, cubo, verificación y publicación). RSS máximo medido con wait4(2).", "",
             "| prueba | filas | segundos | filas/s | RSS máximo |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        t = table_2025()
        n, dt, rss = bench_csv(base, t)
        print(f"csv: {n} filas {dt:.2f}s {n/dt:.0f} filas/s rss {rss:.0f} MB")
        lines.append(f"| CSV MINEDUC latin-1 (2025) | {fmt(n)} | {dec(dt)} | {fmt(n/dt)} | {fmt(rss)} MB |")
        if not a.skip_odbc:
            n, dt, rss = bench_odbc(base, t)
            print(f"odbc: {n} filas {dt:.2f}s {n/dt:.0f} filas/s rss {rss:.0f} MB")
            lines.append(f"| ODBC (psqlODBC → PostgreSQL 15, consulta por defecto) | {fmt(n)} | {dec(dt)} | "
                         f"{fmt(n/dt)} | {fmt(rss)} MB |")
        n, dt, rss, size = bench_big(base, a.big_rows)
        print(f"big: {n} filas {dt:.2f}s {n/dt:.0f} filas/s rss {rss:.0f} MB")
        lines.append(f"| Parquet grande ({fmt(size / 1e6)} MB, streaming) | {fmt(n)} | {dec(dt)} | {fmt(n/dt)} | "
                     f"**{fmt(rss)} MB** |")
    lines += ["", "Objetivo: RSS máximo bajo 1 GB al actualizar 10 millones de filas (lectura por lotes, "
              "escritura por año con ParquetWriter y cubo acumulado por partes)."]
    write_section("refresh", "\n".join(lines))


if __name__ == "__main__":
    main()
