"""Dashboards: server time per request, throughput with wrk, and what the first page costs the browser.

Sets up a temporary instance with the default demo data (11 years, ≈1,8 M student rows), starts
gunicorn with the production worker count (4) on loopback, and measures:

1. latency of full page renders and of filter-change fragments (HTMX requests), sequential, over
   loopback with keep-alive: first request of each filter combination ("frío": the cube's result
   cache has not seen it in that worker) and a repeat pass ("tibio");
2. requests per second with wrk for a mix of filter changes at concurrency 1, 8 and 32 (session
   cookie from a real login, passed through bench/wrk/filtros.lua);
3. first page in chromium (Playwright): requests, bytes transferred (compressed) and whether the
   vega bundle is served gzip and then taken from the browser cache on the next page.

Usage: .venv/bin/python bench/bench_dashboards.py [--years 2015-2025] [--seconds 10]
Writes docs/RENDIMIENTO_TABLEROS.md with the measured numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import requests

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
EMTP_ADMIN = str(VENV_BIN / "emtp-admin")
OUT = REPO / "docs" / "RENDIMIENTO_TABLEROS.md"
PAGES = ["resumen", "especialidades", "territorio", "establecimientos", "tendencias"]
USER, PASSWORD = "bench", "Clave-bench-1"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def run(env, *args, input=None):
    r = subprocess.run([EMTP_ADMIN, *args], env=env, input=input, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"emtp-admin {' '.join(args)} falló: {r.stdout}{r.stderr}")
    return r.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def login(base: str) -> requests.Session:
    s = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(base + "/login").text).group(1)
    r = s.post(base + "/login", data={"username": USER, "password": PASSWORD, "csrf_token": token},
               allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    return s


def combos(n: int, years: list[int], seed: int = 7) -> list[list[tuple[str, str]]]:
    """Filter combinations an analyst would pick (deterministic)."""
    rng = random.Random(seed)
    regions = [15, 1, 2, 3, 4, 5, 13, 6, 7, 16, 8, 9, 14, 10, 11, 12]
    out = []
    for _ in range(n):
        q = []
        r = rng.random()
        if r < 0.4:
            q.append(("anio", str(rng.choice(years))))
        elif r < 0.7:
            a, b = sorted(rng.sample(years, 2))
            q.append(("anio", f"{a}-{b}"))
        if rng.random() < 0.5:
            q.append(("region", str(rng.choice(regions))))
        if rng.random() < 0.3:
            q.append(("dependencia", str(rng.choice([1, 2, 4, 5]))))
        if rng.random() < 0.3:
            q.append(("genero", rng.choice(["hombre", "mujer"])))
        if rng.random() < 0.25:
            q.append(("rama", str(rng.choice([400, 500, 600, 700, 800]))))
        if rng.random() < 0.2:
            q.append(("tipo", rng.choice(["jovenes", "adultos"])))
        if rng.random() < 0.15:
            q.append(("zona", rng.choice(["urbano", "rural"])))
        if rng.random() < 0.15:
            q.append(("sector", str(rng.choice([410, 520, 530, 610, 640, 720]))))
        out.append(q)
    return out


def timed(session: requests.Session, url: str, headers=None) -> tuple[float, int, int]:
    t = time.perf_counter()
    r = session.get(url, headers=headers or {})
    dt = (time.perf_counter() - t) * 1000
    return dt, r.status_code, len(r.content)


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def fmt(x: float, d: int = 1) -> str:
    return f"{x:,.{d}f}".replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def latency_section(base: str, s: requests.Session, years: list[int], n: int) -> tuple[list[str], dict]:
    hx = {"HX-Request": "true", "HX-Target": "tablero"}
    lines = ["| Solicitud | n | p50 (ms) | p95 (ms) | máx (ms) | tamaño medio (KB) | errores |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    summary = {}
    for page in PAGES:
        # warm the worker processes (templates, first cube load) before measuring
        for _ in range(8):
            s.get(f"{base}/{page}")
        for kind, headers in (("página completa", {}), ("fragmento (cambio de filtro)", hx)):
            # different combinations for pages and fragments, so the fragments' "frío" pass is really cold
            qs = combos(n, years, seed=(7 if kind == "página completa" else 8) + PAGES.index(page) * 10)
            for temp in ("frío", "tibio"):
                times, sizes, errors = [], [], 0
                for q in qs:
                    extra = [("top", "15")] if page == "especialidades" and kind != "página completa" else []
                    url = f"{base}/{page}?{urlencode(q + extra)}"
                    dt, code, size = timed(s, url, headers)
                    times.append(dt)
                    sizes.append(size)
                    errors += code != 200
                key = (page, kind, temp)
                summary[key] = (pct(times, .5), pct(times, .95), max(times))
                lines.append(f"| {page} · {kind} · {temp} | {len(times)} | {fmt(pct(times, .5))} | "
                             f"{fmt(pct(times, .95))} | {fmt(max(times))} | {fmt(statistics.mean(sizes) / 1024)} | "
                             f"{errors} |")
    # table sort/search/page fragments (only #tabla-escuelas)
    times = []
    for i, q in enumerate(combos(n, years, seed=99)):
        extra = [("q", ["liceo", "industrial", "san", "politécnico", "13"][i % 5]), ("orden", "nombre"),
                 ("pagina", str(1 + i % 3))]
        dt, code, _ = timed(s, f"{base}/establecimientos?{urlencode(q + extra)}",
                            {"HX-Request": "true", "HX-Target": "tabla-escuelas"})
        times.append(dt)
    summary[("establecimientos", "tabla", "")] = (pct(times, .5), pct(times, .95), max(times))
    lines.append(f"| establecimientos · fragmento tabla (buscar/ordenar/paginar) | {len(times)} | "
                 f"{fmt(pct(times, .5))} | {fmt(pct(times, .95))} | {fmt(max(times))} | – | 0 |")
    return lines, summary


def wrk_section(base: str, s: requests.Session, years: list[int], seconds: int) -> list[str]:
    paths_file = Path(tempfile.mkstemp(prefix="emtp-wrk-", suffix=".txt")[1])
    paths = []
    for i, q in enumerate(combos(200, years, seed=11)):
        paths.append(f"/{PAGES[i % len(PAGES)]}?{urlencode(q)}")
    paths_file.write_text("\n".join(paths) + "\n")
    cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies)
    env = {**os.environ, "COOKIE": cookie, "WRK_PATHS": str(paths_file)}
    lines = ["| Concurrencia | Solicitudes | Solicitudes/s | p50 (ms) | p95 (ms) | p99 (ms) | máx (ms) | "
             "errores (conexión/lectura/escritura/timeout/HTTP≥400) |",
             "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for conns in (1, 8, 32):
        threads = min(conns, 4)
        r = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s",
                            "-s", str(REPO / "bench" / "wrk" / "filtros.lua"), base],
                           env=env, capture_output=True, text=True, cwd=REPO)
        m = re.search(r"RESULT (.*)", r.stdout)
        if not m:
            lines.append(f"| {conns} | wrk falló: {r.stdout[-200:]} {r.stderr[-200:]} |")
            continue
        d = dict(kv.split("=") for kv in m.group(1).split())
        errs = "/".join(d[k] for k in ("connect_err", "read_err", "write_err", "timeout_err", "status_err"))
        lines.append(f"| {conns} | {fmt(float(d['requests']), 0)} | {fmt(float(d['rps']))} | {fmt(float(d['p50_ms']))} | "
                     f"{fmt(float(d['p95_ms']))} | {fmt(float(d['p99_ms']))} | {fmt(float(d['max_ms']))} | {errs} |")
    paths_file.unlink()
    return lines


def first_page_section(base: str) -> list[str]:
    from playwright.sync_api import sync_playwright

    lines = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        ctx = b.new_context(viewport={"width": 1366, "height": 900})
        page = ctx.new_page()
        page.goto(base + "/login")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/resumen")
        page.wait_for_load_state("networkidle")
        # a fresh browser cache for the measured load
        ctx2 = b.new_context(viewport={"width": 1366, "height": 900}, storage_state=ctx.storage_state())
        pg = ctx2.new_page()
        reqs = []
        pg.on("requestfinished", lambda r: reqs.append(r))
        t = time.perf_counter()
        pg.goto(base + "/resumen")
        pg.wait_for_function("() => [...document.querySelectorAll('.vega-chart')].every(e => e.hasAttribute('data-rendered'))")
        ready_ms = (time.perf_counter() - t) * 1000
        rows, total = [], 0
        for r in reqs:
            sizes = r.sizes()
            resp = r.response()
            body = sizes["responseBodySize"]
            total += body + sizes["responseHeadersSize"]
            enc = resp.headers.get("content-encoding", "–") if resp else "?"
            cache = resp.headers.get("cache-control", "") if resp else ""
            rows.append(f"| `{r.url.replace(base, '')[:70]}` | {resp.status if resp else '?'} | {fmt(body / 1024)} | "
                        f"{enc} | {cache[:45]} |")
        lines += [f"Primera carga de `/resumen` con caché vacía (sesión iniciada): **{len(reqs)} solicitudes, "
                  f"{fmt(total / 1024)} KB transferidos** (cuerpos comprimidos cuando el servidor comprime, más "
                  f"cabeceras); gráficos dibujados en {fmt(ready_ms, 0)} ms.", "",
                  "| Recurso | Estado | Cuerpo transferido (KB) | Content-Encoding | Cache-Control |",
                  "|---|---:|---:|---|---|", *rows, ""]
        # next page in the same browser: the vega bundle must come from the browser cache
        cdp = ctx2.new_cdp_session(pg)
        cdp.send("Network.enable")
        seen = {}
        cdp.on("Network.responseReceived", lambda e: seen.__setitem__(e["requestId"], (
            e["response"]["url"], bool(e["response"].get("fromDiskCache") or e["response"].get("fromPrefetchCache")))))
        cached = set()
        cdp.on("Network.requestServedFromCache", lambda e: cached.add(e["requestId"]))
        finished = {}
        cdp.on("Network.loadingFinished", lambda e: finished.__setitem__(e["requestId"], e.get("encodedDataLength", 0)))
        pg.goto(base + "/territorio")
        pg.wait_for_function("() => [...document.querySelectorAll('.vega-chart')].every(e => e.hasAttribute('data-rendered'))")
        pg.wait_for_timeout(300)
        from_cache = {rid for rid, (_, disk) in seen.items() if disk} | cached
        net_bytes = sum(n for rid, n in finished.items() if rid not in from_cache)
        vega = [rid for rid, (url, _) in seen.items() if "/recursos/vega-" in url]
        lines.append(f"Página siguiente (`/territorio`) en el mismo navegador: {len(seen)} recursos, "
                     f"{len(from_cache & set(seen))} servidos desde la caché del navegador, "
                     f"{fmt(net_bytes / 1024)} KB transferidos por la red; paquete vega: "
                     + ("no se pidió (ya estaba cargado)" if not vega else
                        ("tomado de la caché del navegador, sin red" if all(r in from_cache for r in vega)
                         else "descargado de nuevo")) + ".")
        b.close()
    return lines


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()} · {os.cpu_count()} CPU ({cpu}) · Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--years", default="2015-2025")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--combos", type=int, default=60)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="emtp-bench-dash-"))
    home = tmp / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "visualizador-emtp.toml").write_text("[security]\nbcrypt_rounds = 4\n[logging]\nlevel = \"WARNING\"\n")
    env = {**os.environ, "EMTP_HOME": str(home)}
    proc = None
    try:
        run(env, "init")
        t = time.perf_counter()
        run(env, "demo-data", "--years", args.years)
        demo_s = time.perf_counter() - t
        import json
        manifest = json.loads((home / "data" / "processed" / "current" / "manifest.json").read_text())
        rows = int(manifest["rows"])
        run(env, "users", "create", "--role", "analista", USER, "--password-stdin", input=PASSWORD + "\n")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([EMTP_ADMIN, "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(200):
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        s = login(base)
        years = sorted(int(y) for y in manifest["years"])
        print("latencias…", flush=True)
        lat_lines, summary = latency_section(base, s, years, args.combos)
        print("wrk…", flush=True)
        wrk_lines = wrk_section(base, s, years, args.seconds)
        print("primera página…", flush=True)
        first_lines = first_page_section(base)
        frag_p95 = max(v[1] for k, v in summary.items() if k[1].startswith("fragmento"))
        full_p95 = max(v[1] for k, v in summary.items() if k[1] == "página completa")
        doc = [
            "# Rendimiento de los tableros",
            "",
            f"Generado por `bench/bench_dashboards.py` el {datetime.now().strftime('%d-%m-%Y %H:%M')} "
            f"(no editar a mano: vuelva a ejecutar el script).",
            "",
            f"- Máquina: {machine()}",
            f"- Datos: `emtp-admin demo-data --years {args.years}` → {fmt(rows, 0)} filas de estudiantes "
            f"({len(years)} años), generados y publicados en {fmt(demo_s)} s.",
            f"- Servidor: `emtp-admin serve` (gunicorn, {args.workers} workers, preload) en 127.0.0.1; cliente en la "
            f"misma máquina (loopback, keep-alive).",
            f"- Combinaciones de filtros: {args.combos} por página (año, rango de años, región, dependencia, género, rama, "
            f"tipo, zona, sector), deterministas.",
            "",
            "## 1. Tiempo por solicitud (secuencial)",
            "",
            "«Frío»: cada combinación se pide por primera vez (el caché de resultados del cubo no la tiene); "
            "«tibio»: la misma lista otra vez. Fragmento = respuesta HTMX a un cambio de filtro (`#tablero`: "
            "filtros + KPIs + gráficos con sus datos + tablas).",
            "",
            *lat_lines,
            "",
            f"**Peor p95 de un fragmento: {fmt(frag_p95)} ms** (objetivo ≤ 25 ms: "
            f"{'cumplido' if frag_p95 <= 25 else 'NO cumplido'}). Peor p95 de una página completa: {fmt(full_p95)} ms.",
            "",
            "Los gráficos se compilan con Altair una vez por proceso (al importar el módulo, antes del fork de "
            "gunicorn); cada solicitud solo copia un diccionario pequeño y le pone las filas agregadas "
            "(`charts/specs.py: fill`).",
            "",
            "## 2. Rendimiento con wrk (mezcla de cambios de filtro)",
            "",
            f"{args.seconds} s por nivel, 200 URLs distintas de las cinco páginas en rotación, como solicitudes HTMX "
            "con la cookie de una sesión real (`bench/wrk/filtros.lua`).",
            "",
            *wrk_lines,
            "",
            "## 3. Primera página en el navegador",
            "",
            *first_lines,
            "",
            "El paquete vega (vega + vega-lite + vega-embed, generado sin red con `vl_convert.javascript_bundle()`) "
            "se sirve desde la propia aplicación con una URL versionada, `Cache-Control: public, max-age=31536000, "
            "immutable` y gzip precalculado cuando el navegador lo acepta. Las páginas y fragmentos HTML se comprimen "
            "con gzip en la aplicación; los demás archivos estáticos (CSS, htmx) los puede comprimir el proxy inverso.",
            "",
        ]
        OUT.write_text("\n".join(doc), encoding="utf-8")
        print("\n".join(doc))
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
