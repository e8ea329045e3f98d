"""emtp-admin audit verify|tail|reindex."""

from __future__ import annotations

import json
import os
import re
import time
from collections import deque
from pathlib import Path
from typing import Iterator

import click

from visualizador_emtp.audit.chain import _open_text
from visualizador_emtp.cli.common import CliError, get_instance
from visualizador_emtp.fmt import local_dt, miles


def register(cli: click.Group) -> None:
    cli.add_command(audit)


@click.group()
def audit() -> None:
    """Registro de auditoría: verificar la cadena, ver los últimos eventos, reconstruir el índice."""


# -- verify ---------------------------------------------------------------------------------------

_BREAK = "la cadena se rompe"


def explain_problems(problems: list[str], files: list[str], default_file: str) -> list[str]:
    """Make every problem name its file, and say where a rotated file was expected to continue."""
    out = []
    last_file = files[-1] if files else default_file
    for problem in problems:
        m = re.match(r"^(?P<file>[^:\s]+):(?P<line>\d+): ", problem)
        if m is None and not any(problem.startswith(f + ":") for f in files):
            problem = f"{last_file}: {problem}"
        elif m and m.group("line") == "1" and _BREAK in problem and m.group("file") in files:
            i = files.index(m.group("file"))
            if i > 0:
                problem += (f"; no continúa el final de {files[i - 1]} "
                            f"(faltan líneas al final de {files[i - 1]} o al inicio de {files[i]})")
        out.append(problem)
    return out


@audit.command("verify")
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Verifica la cadena de hashes (incluidos los archivos rotados). Código 0: íntegra; 2: alterada."""
    inst = get_instance(ctx)
    result = inst.audit.verify()
    files = " → ".join(result.files) if result.files else "ninguno"
    if result.ok:
        if not result.lines:
            click.echo("El registro de auditoría está vacío (aún no hay eventos).")
            return
        n = len(result.files)
        click.echo(f"Cadena íntegra: {miles(result.lines)} líneas en {n} archivo{'s' if n != 1 else ''} ({files}).")
        return
    for line in explain_problems(result.problems, result.files, inst.audit.path.name):
        click.echo(line)
    n = len(result.problems)
    raise CliError(f"La cadena de auditoría no verifica: {miles(n)} problema{'s' if n != 1 else ''} en "
                   f"{miles(result.lines)} líneas revisadas ({files}).", 2)


# -- tail -----------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def format_record(rec: dict) -> str:
    """One human-readable Spanish line, in Chile local time."""
    from visualizador_emtp.audit.query import describe_detail, event_label

    when = local_dt(str(rec.get("ts") or ""), "%d-%m-%Y %H:%M:%S")
    ok = rec.get("success") is True
    parts = [when, "OK    " if ok else "FALLÓ ", f"{event_label(str(rec.get('event') or '')):<29}",
             f"usuario: {rec.get('actor') or '—'}"]
    target = rec.get("target")
    if target and target != rec.get("actor"):
        parts.append(f"objetivo: {target}")
    if rec.get("ip"):
        parts.append(f"IP: {rec['ip']}")
    detail = describe_detail(str(rec.get("event") or ""), rec.get("detail"))
    if detail:
        parts.append(f"({detail})")
    # attempted user names and user agents come from outside: never let them drive the terminal
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", "  ".join(parts))


def _reverse_lines(path: Path, block: int = 64 * 1024) -> Iterator[bytes]:
    """Lines of a plain file from the last to the first."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        pos = f.tell()
        rest = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + rest
            lines = buf.split(b"\n")
            rest = lines.pop(0)
            for line in reversed(lines):
                if line.strip():
                    yield line
        if rest.strip():
            yield rest


def _records_newest_first(audit_log) -> Iterator[dict]:
    for p in reversed(audit_log.files()):
        if p.name.endswith(".gz"):
            with _open_text(p) as f:
                lines = [line.encode("utf-8") for line in f if line.strip()]
            source = reversed(lines)
        else:
            source = _reverse_lines(p)
        for raw in source:
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if isinstance(rec, dict):
                yield rec


def _matches(rec: dict, event: str | None, user: str | None, failed: bool) -> bool:
    if event and rec.get("event") != event:
        return False
    if user and str(rec.get("actor") or "").lower() != user.lower():
        return False
    if failed and rec.get("success") is True:
        return False
    return True


@audit.command("tail")
@click.option("-n", "--lines", "count", type=click.IntRange(0, 1_000_000), default=20, show_default=True,
              help="Cantidad de eventos a mostrar.")
@click.option("-f", "--follow", is_flag=True, help="Sigue mostrando los eventos nuevos (Ctrl+C para salir).")
@click.option("--event", "event", metavar="EVENTO", help="Solo este evento (login, logout, user_create, …).")
@click.option("--user", "user", metavar="USUARIO", help="Solo eventos de este usuario (actor).")
@click.option("--failed", is_flag=True, help="Solo eventos fallidos.")
@click.pass_context
def tail(ctx: click.Context, count: int, follow: bool, event: str | None, user: str | None, failed: bool) -> None:
    """Muestra los últimos eventos de auditoría en hora de Chile."""
    inst = get_instance(ctx)
    log = inst.audit
    picked: deque = deque()
    if count:
        for rec in _records_newest_first(log):
            if _matches(rec, event, user, failed):
                picked.appendleft(rec)
                if len(picked) >= count:
                    break
    if not picked and not follow:
        click.echo("No hay eventos que coincidan." if (event or user or failed) else "No hay eventos registrados.")
        return
    for rec in picked:
        click.echo(format_record(rec))
    if follow:
        try:
            _follow(log.path, lambda rec: _matches(rec, event, user, failed))
        except KeyboardInterrupt:
            pass


def _follow(path: Path, keep, interval: float = 0.3) -> None:
    """Print lines appended from now on; after logrotate, finish the old file and open the new one."""
    f = None
    ident = None
    buf = b""

    def open_current(at_end: bool):
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            return None, None
        st = os.fstat(fh.fileno())
        if at_end:
            fh.seek(0, os.SEEK_END)
        return fh, (st.st_dev, st.st_ino)

    def emit(data: bytes) -> bytes:
        *lines, rest = data.split(b"\n")
        for raw in lines:
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if isinstance(rec, dict) and keep(rec):
                click.echo(format_record(rec))
        return rest

    f, ident = open_current(at_end=True)
    while True:
        chunk = f.read() if f else b""
        if chunk:
            buf = emit(buf + chunk)
            continue
        try:
            st = os.stat(path)
            now = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            now = None
        if now is not None and now != ident:
            # rotated: finish the old file (a line may have landed just before the rename), then
            # read the new one from its start
            if f:
                emit(buf + f.read() + b"\n")
                f.close()
            f, ident = open_current(at_end=False)
            buf = b""
            continue
        if f and now is not None and st.st_size < f.tell():  # copytruncate
            f.seek(0)
            buf = b""
            continue
        time.sleep(interval)


# -- reindex --------------------------------------------------------------------------------------

@audit.command("reindex")
@click.option("--full", is_flag=True, help="Reconstruye el índice desde cero.")
@click.pass_context
def reindex(ctx: click.Context, full: bool) -> None:
    """Actualiza el índice de consultas de la página Auditoría (data/run/audit_index.db)."""
    from visualizador_emtp.audit.index import AuditIndex, IndexBusy

    inst = get_instance(ctx)
    idx = AuditIndex.for_instance(inst)
    try:
        stats = idx.rebuild(wait=600) if full else idx.refresh(wait=600)
    except IndexBusy:
        raise CliError("Otro proceso está actualizando el índice de auditoría; intente en unos minutos.") from None
    extra = f", {miles(stats.skipped)} líneas ilegibles omitidas" if stats.skipped else ""
    what = "reconstruido" if stats.rebuilt else "actualizado"
    click.echo(f"Índice de auditoría {what}: {miles(stats.lines)} eventos nuevos{extra} "
               f"en {miles(stats.seconds, 1)} s.")
