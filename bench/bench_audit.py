"""Benchmark of the Auditoría page with a large audit log (default 1,000,000 lines).

    .venv/bin/python bench/bench_audit.py [--lines 1000000] [--keep DIR] [--out docs/RENDIMIENTO_AUDITORIA.md]

Steps: write N audit lines with a valid hash chain (same hashing as audit/chain.py), verify the chain,
ingest them into the index (first ingest), append 1,000 more through AuditLog.append and ingest
again (incremental), then time the page's queries (summary + first page + last page, and the whole
page through Flask) against a naive full scan of the log in the same run. Writes the report in
Spanish to --out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from visualizador_emtp.audit import query as q  # noqa: E402
from visualizador_emtp.audit.chain import FIELDS, GENESIS  # noqa: E402
from visualizador_emtp.audit.index import AuditIndex, CHILE_TZ  # noqa: E402
from visualizador_emtp.fmt import miles  # noqa: E402

USERS = [f"usuario{i:02d}" for i in range(40)]
PAGES = ["resumen", "especialidades", "territorio", "establecimientos", "tendencias"]
UAS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
       "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"]


def fmt(seconds: float) -> str:
    """Seconds → Chilean text in ms or s."""
    if seconds < 1:
        return f"{miles(seconds * 1000, 1)} ms"
    return f"{miles(seconds, 1)} s"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def generate(path: Path, head: Path, n: int, days: int, seed: int = 7) -> None:
    """n chained lines spread evenly over the last ``days`` days (oldest first)."""
    rnd = random.Random(seed)
    now = datetime.now(timezone.utc)
    start = now - timedelta(days=days)
    step = (now - timedelta(minutes=5) - start) / n
    prev = GENESIS
    dumps = json.dumps
    sha = hashlib.sha256
    with open(path, "w", encoding="utf-8") as out:
        buf = []
        for i in range(n):
            r = rnd.random()
            user = rnd.choice(USERS)
            success, detail, target = True, None, ""
            if r < 0.62:
                event, detail = "page_view", {"page": rnd.choice(PAGES)}
            elif r < 0.80:
                event, target = "login", user
                if rnd.random() < 0.08:
                    success, detail = False, {"reason": rnd.choice(["bad_password", "unknown_user"])}
            elif r < 0.92:
                event, target = "logout", user
            elif r < 0.97:
                event, detail = "export", {"page": rnd.choice(PAGES), "format": rnd.choice(["csv", "xlsx", "png"])}
            else:
                event, target = rnd.choice(["user_update", "user_password_change", "user_create"]), rnd.choice(USERS)
                user = "admin"
            ts = (start + step * i).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            rec = {"ts": ts, "event": event, "actor": user, "target": target, "success": success,
                   "ip": f"10.20.{rnd.randint(0, 9)}.{rnd.randint(1, 250)}", "user_agent": rnd.choice(UAS),
                   "detail": detail}
            body = dumps({k: rec[k] for k in FIELDS}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            h = sha((prev + body).encode("utf-8")).hexdigest()
            rec["prev"], rec["hash"] = prev, h
            prev = h
            buf.append(dumps(rec, ensure_ascii=False, separators=(",", ":")))
            if len(buf) >= 20000:
                out.write("\n".join(buf) + "\n")
                buf = []
        if buf:
            out.write("\n".join(buf) + "\n")
    head.parent.mkdir(parents=True, exist_ok=True)
    head.write_text(json.dumps({"hash": prev}))


def naive_page(path: Path, f: q.Filters, page_size: int = 50) -> tuple:
    """What the page would cost without the index: parse every line, filter, aggregate, sort, slice."""
    first, last = f.days()
    rows, events, pages, failed = [], Counter(), Counter(), Counter()
    users = set()
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            rec = json.loads(raw)
            day = datetime.fromisoformat(rec["ts"].replace("Z", "+00:00")).astimezone(CHILE_TZ).date()
            if not first <= day <= last:
                continue
            rows.append((rec["ts"], len(rows), rec))
            events[rec["event"]] += 1
            if rec["success"] and rec["actor"]:
                users.add(rec["actor"].lower())
            if rec["event"] == "page_view":
                pages[(rec.get("detail") or {}).get("page")] += 1
            if rec["event"] == "login" and not rec["success"]:
                failed[rec["actor"]] += 1
    rows.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return len(rows), events.most_common(5), pages.most_common(5), rows[:page_size], rows[-page_size:]


class _Inst:
    def __init__(self, home: Path):
        from visualizador_emtp.audit.chain import AuditLog
        self.audit = AuditLog(home / "logs" / "audit.jsonl", home / "data" / "run")
        self.paths = type("P", (), {"run_dir": home / "data" / "run"})()


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{miles(int(line.split()[1]) / 1024 / 1024, 1)} GiB"
    except OSError:
        pass
    return {"cpu": cpu, "cores": str(os.cpu_count()), "mem": mem, "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=90, help="Días que cubren las líneas generadas.")
    ap.add_argument("--repeat", type=int, default=30, help="Repeticiones de cada consulta.")
    ap.add_argument("--naive-repeat", type=int, default=3)
    ap.add_argument("--keep", help="Carpeta donde dejar la instancia (por defecto una temporal que se borra).")
    ap.add_argument("--out", default=str(REPO / "docs" / "RENDIMIENTO_AUDITORIA.md"))
    args = ap.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-audit-"))
    home = root / "home"
    if home.exists():
        shutil.rmtree(home)
    try:
        return run(args, home)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def run(args, home: Path) -> int:
    from visualizador_emtp.home import init_home
    from visualizador_emtp.instance import Instance

    cfg = home / "config" / "visualizador-emtp.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("[security]\nbcrypt_rounds = 4\n", encoding="utf-8")
    inst = Instance.load(home)
    init_home(inst)
    log_path = inst.paths.audit_log
    res: dict[str, object] = {}

    print(f"Generando {miles(args.lines)} líneas…", flush=True)
    t = time.perf_counter()
    generate(log_path, inst.audit.head_path, args.lines, args.days)
    res["gen"] = time.perf_counter() - t
    res["log_size"] = log_path.stat().st_size

    print("Verificando la cadena…", flush=True)
    t = time.perf_counter()
    v = inst.audit.verify()
    res["verify"] = time.perf_counter() - t
    assert v.ok and v.lines == args.lines, v.problems[:3]

    idx = AuditIndex.for_instance(inst)
    print("Primera ingesta…", flush=True)
    stats = idx.refresh(wait=600)
    res["first_ingest"] = stats.seconds
    assert stats.lines == args.lines

    t = time.perf_counter()
    for i in range(1000):
        inst.audit.append("page_view", actor=USERS[i % len(USERS)], ip="10.20.0.1", user_agent=UAS[0],
                          detail={"page": PAGES[i % len(PAGES)]})
    res["append_1000"] = time.perf_counter() - t
    stats = idx.refresh()
    res["incr_ingest"] = stats.seconds
    assert stats.lines == 1000 and not stats.rebuilt
    t = time.perf_counter()
    stats = idx.refresh()
    res["noop_refresh"] = time.perf_counter() - t
    res["db_size"] = sum(p.stat().st_size for p in idx.db_path.parent.glob("audit_index.db*"))

    # -- the page's queries ------------------------------------------------------------------
    timings: dict[str, dict[str, list[float]]] = {}
    for period in ("hoy", "7d", "30d"):
        f = q.Filters(period=period)
        total = q.query(inst, f, page=1, page_size=50).total
        last_page = max(1, -(-total // 50))
        series = {"summary": [], "first": [], "last": [], "page": [], "total": total}
        for _ in range(args.repeat):
            t = time.perf_counter()
            q.summary(inst, f)
            series["summary"].append(time.perf_counter() - t)
            t = time.perf_counter()
            q.query(inst, f, page=1, page_size=50)
            series["first"].append(time.perf_counter() - t)
            t = time.perf_counter()
            r = q.query(inst, f, page=last_page, page_size=50)
            series["last"].append(time.perf_counter() - t)
            assert r.page == last_page and r.rows
            t = time.perf_counter()
            q.page_data(inst, f, 1)
            q.page_data(inst, f, last_page)
            series["page"].append((time.perf_counter() - t) / 2)
        timings[period] = series
    # a middle page with a filter (the worst case for OFFSET)
    f_mid = q.Filters(period="30d", event="page_view")
    mid_total = q.query(inst, f_mid).total
    mid = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        q.query(inst, f_mid, page=max(1, mid_total // 100), page_size=50)
        mid.append(time.perf_counter() - t)
    res["mid"] = (mid_total, mid)

    # the whole page through Flask (render included)
    from visualizador_emtp.app import create_app
    from visualizador_emtp.users import service as users_service

    users_service.create_user(inst.db, "benchadmin", "Clave-segura-1", "admin", bcrypt_rounds=4)
    app = create_app(home=str(home))
    client = app.test_client()
    import re
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"username": "benchadmin", "password": "Clave-segura-1",
                                       "csrf_token": token}).status_code == 302
    http = {"full": [], "htmx_last": []}
    last_30 = -(-q.query(inst, q.Filters(period="30d")).total // 50)
    for _ in range(args.repeat):
        t = time.perf_counter()
        assert client.get("/admin/auditoria/?periodo=30d").status_code == 200
        http["full"].append(time.perf_counter() - t)
        t = time.perf_counter()
        assert client.get(f"/admin/auditoria/?periodo=30d&pagina={last_30}",
                          headers={"HX-Request": "true"}).status_code == 200
        http["htmx_last"].append(time.perf_counter() - t)
    res["http"] = http

    # -- naive full scan, same run ----------------------------------------------------------------
    print("Escaneo completo (sin índice)…", flush=True)
    naive = []
    for _ in range(args.naive_repeat):
        t = time.perf_counter()
        n_rows = naive_page(log_path, q.Filters(period="30d"))[0]
        naive.append(time.perf_counter() - t)
    indexed = q.query(inst, q.Filters(period="30d")).total  # the Flask login added one event since
    assert n_rows == indexed, (n_rows, indexed)
    res["naive"] = naive

    write_report(Path(args.out), args, res, timings)
    print(Path(args.out).read_text(encoding="utf-8"))
    return 0


def write_report(out: Path, args, res: dict, timings: dict) -> None:
    m = machine()
    now = datetime.now(CHILE_TZ)
    naive_p50 = statistics.median(res["naive"])
    idx30 = statistics.median(timings["30d"]["page"])
    lines = [
        "# Rendimiento de la página Auditoría",
        "",
        f"Medición generada por `bench/bench_audit.py` el {now.strftime('%d-%m-%Y a las %H:%M')} (hora de Chile).",
        "No edite este archivo a mano: vuelva a ejecutar el script.",
        "",
        "## Equipo",
        "",
        f"- Procesador: {m['cpu']} ({m['cores']} núcleos visibles)",
        f"- Memoria: {m['mem']}",
        f"- Sistema: {m['os']}; Python {m['python']}; SQLite {m['sqlite']}",
        "",
        "## Datos",
        "",
        f"- {miles(args.lines)} líneas de auditoría con cadena de hashes válida, repartidas en los últimos "
        f"{args.days} días (62 % vistas de tableros, 18 % ingresos con 8 % fallidos, 12 % cierres de sesión, "
        f"5 % exportaciones, 3 % cambios de usuarios; 40 usuarios).",
        f"- audit.jsonl: {miles(res['log_size'] / 1024 / 1024, 1)} MB; índice (data/run/audit_index.db + WAL): "
        f"{miles(res['db_size'] / 1024 / 1024, 1)} MB.",
        f"- Generación: {fmt(res['gen'])}; `emtp-admin audit verify` de todo el registro: {fmt(res['verify'])}.",
        "",
        "## Índice",
        "",
        "| Operación | Tiempo |",
        "|---|---:|",
        f"| Primera ingesta de {miles(args.lines)} líneas | {fmt(res['first_ingest'])} |",
        f"| 1.000 eventos nuevos escritos con AuditLog.append | {fmt(res['append_1000'])} |",
        f"| Ingesta incremental de esos 1.000 eventos | {fmt(res['incr_ingest'])} |",
        f"| Actualización sin eventos nuevos (lo que paga cada visita) | {fmt(res['noop_refresh'])} |",
        "",
        f"## Consultas de la página ({args.repeat} repeticiones; p50 / p95)",
        "",
        "Cada consulta incluye la verificación de eventos nuevos en el registro (sin eventos nuevos).",
        "",
        "| Período | Eventos en el período | Resumen (tarjetas) | Primera página | Última página | Resumen + página |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for period, label in (("hoy", "Hoy"), ("7d", "Últimos 7 días"), ("30d", "Últimos 30 días")):
        s = timings[period]
        cell = lambda k: f"{fmt(statistics.median(s[k]))} / {fmt(pct(s[k], 95))}"  # noqa: E731
        lines.append(f"| {label} | {miles(s['total'])} | {cell('summary')} | {cell('first')} | {cell('last')} | "
                     f"{cell('page')} |")
    mid_total, mid = res["mid"]
    http = res["http"]
    lines += [
        "",
        f"- Peor caso de paginación (página del medio, 30 días, solo «Vista de tablero», {miles(mid_total)} filas): "
        f"p50 {fmt(statistics.median(mid))}, p95 {fmt(pct(mid, 95))}.",
        f"- Página completa por Flask (GET /admin/auditoria/?periodo=30d, con plantilla): "
        f"p50 {fmt(statistics.median(http['full']))}, p95 {fmt(pct(http['full'], 95))}.",
        f"- Fragmento HTMX de la última página (30 días): p50 {fmt(statistics.median(http['htmx_last']))}, "
        f"p95 {fmt(pct(http['htmx_last'], 95))}.",
        "",
        "## Comparación con un escaneo completo del archivo",
        "",
        f"Leer y filtrar todo audit.jsonl en cada visita (resumen + primera y última página de 30 días, "
        f"{args.naive_repeat} repeticiones): p50 {fmt(naive_p50)}.",
        "",
        f"Con el índice, resumen + una página de 30 días: p50 {fmt(idx30)} → "
        f"**{miles(naive_p50 / idx30)} veces más rápido**.",
        "",
        "## Cómo se logra",
        "",
        "- La página nunca lee audit.jsonl completo: consulta `data/run/audit_index.db` (SQLite en modo WAL).",
        "- Cada visita solo ingiere los bytes agregados desde la última ingesta (posición por archivo; "
        "tras logrotate termina audit.jsonl.1 y sigue con el nuevo audit.jsonl, sin contar dos veces).",
        "- Las tarjetas y los totales salen de un resumen diario (día de Chile × evento × usuario × resultado × "
        "página), no de las filas.",
        "- La última página se lee recorriendo el índice desde el otro extremo, por lo que cuesta lo mismo que "
        "la primera.",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
