"""emtp-admin audit verify|tail|reindex through the real console script."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from visualizador_emtp.instance import Instance

EMTP_ADMIN = str(Path(sys.executable).parent / "emtp-admin")


def _fill(inst: Instance, n: int, actor: str = "ana", **kw) -> None:
    for i in range(n):
        inst.audit.append(kw.get("event", "login"), actor=actor, target=actor, success=kw.get("success", True),
                          ip="10.0.0.7", detail=kw.get("detail"))


def test_verify_intact(run_cli, instance):
    _fill(instance, 12)
    r = run_cli("audit", "verify")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Cadena íntegra: 12 líneas en 1 archivo (audit.jsonl)."


def test_verify_empty_log(run_cli, instance):
    r = run_cli("audit", "verify")
    assert r.returncode == 0
    assert "vacío" in r.stdout


def test_verify_reports_each_problem_with_exit_2(run_cli, instance):
    _fill(instance, 1500)
    path = instance.audit.path
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[99] = lines[99].replace('"actor":"ana"', '"actor":"eva"')   # edited: line 100
    del lines[499]                                                     # deleted: line 500
    path.write_text("".join(lines[:-3]), encoding="utf-8")              # truncated: last 3 lines gone
    r = run_cli("audit", "verify")
    assert r.returncode == 2
    assert r.stdout.splitlines() == [
        "audit.jsonl:100: el contenido fue modificado",
        "audit.jsonl:500: la cadena se rompe (falta o se eliminó una línea anterior)",
        "audit.jsonl: faltan líneas al final del registro (archivo truncado)",
    ]
    assert r.stderr.strip() == ("Error: La cadena de auditoría no verifica: 3 problemas en 1.496 líneas revisadas "
                                "(audit.jsonl).")
    assert "Traceback" not in r.stderr


def test_verify_across_rotations_and_names_where_a_rotated_file_continues(run_cli, instance):
    log = instance.audit
    _fill(instance, 5)
    with open(log.path, "rb") as s, gzip.open(log.path.with_name("audit.jsonl.2.gz"), "wb") as d:
        shutil.copyfileobj(s, d)
    log.path.unlink()
    _fill(instance, 4, actor="beto")
    os.rename(log.path, log.path.with_name("audit.jsonl.1"))
    _fill(instance, 3, actor="carla")
    r = run_cli("audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == ("Cadena íntegra: 12 líneas en 3 archivos "
                                "(audit.jsonl.2.gz → audit.jsonl.1 → audit.jsonl).")
    rotated = log.path.with_name("audit.jsonl.1")
    rotated.write_text("".join(rotated.read_text().splitlines(keepends=True)[:-1]))  # drop its last line
    r = run_cli("audit", "verify")
    assert r.returncode == 2
    assert r.stdout.splitlines() == [
        "audit.jsonl:1: la cadena se rompe (falta o se eliminó una línea anterior); no continúa el final de "
        "audit.jsonl.1 (faltan líneas al final de audit.jsonl.1 o al inicio de audit.jsonl)"]


def test_tail_shows_last_events_in_spanish_chile_time(run_cli, instance):
    log = instance.audit
    # 2025-01-15 12:00 UTC is 09:00 in Chile (summer time, UTC-3)
    log.append("login", actor="ana", target="ana", success=True, ip="10.0.0.1",
               ts=datetime(2025, 1, 15, 12, 0, 5, tzinfo=timezone.utc))
    log.append("login", actor="beto", target="beto", success=False, ip="10.0.0.2",
               detail={"reason": "bad_password"}, ts=datetime(2025, 1, 15, 12, 1, tzinfo=timezone.utc))
    log.append("user_create", actor="ana", target="carla", detail={"role": "analista"},
               ts=datetime(2025, 7, 1, 16, 0, tzinfo=timezone.utc))  # winter: UTC-4 → 12:00
    r = run_cli("audit", "tail", "-n", "2")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert len(out) == 2
    assert out[0].startswith("15-01-2025 09:01:00  FALLÓ")
    assert "Inicio de sesión" in out[0] and "usuario: beto" in out[0] and "contraseña incorrecta" in out[0]
    assert out[1].startswith("01-07-2025 12:00:00  OK")
    assert "Creación de usuario" in out[1] and "objetivo: carla" in out[1] and "perfil: analista" in out[1]


def test_tail_filters(run_cli, instance):
    _fill(instance, 30, actor="ana")
    _fill(instance, 3, actor="beto", success=False, detail={"reason": "bad_password"})
    _fill(instance, 2, actor="beto", event="logout")
    _fill(instance, 5, actor="ana")
    r = run_cli("audit", "tail", "--failed")
    assert r.returncode == 0
    assert len(r.stdout.splitlines()) == 3 and all("FALLÓ" in x for x in r.stdout.splitlines())
    r = run_cli("audit", "tail", "--user", "BETO", "--event", "logout", "-n", "10")
    assert len(r.stdout.splitlines()) == 2 and all("Cierre de sesión" in x for x in r.stdout.splitlines())
    r = run_cli("audit", "tail", "--user", "nadie")
    assert r.returncode == 0 and r.stdout.strip() == "No hay eventos que coincidan."
    r = run_cli("audit", "tail", "-n", "-4")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_tail_reads_back_into_rotated_files(run_cli, instance):
    log = instance.audit
    _fill(instance, 4, actor="vieja")
    with open(log.path, "rb") as s, gzip.open(log.path.with_name("audit.jsonl.1.gz"), "wb") as d:
        shutil.copyfileobj(s, d)
    log.path.unlink()
    _fill(instance, 2, actor="nueva")
    r = run_cli("audit", "tail", "-n", "5")
    users = [x.split("usuario: ")[1].split()[0] for x in r.stdout.splitlines()]
    assert users == ["vieja", "vieja", "vieja", "nueva", "nueva"]


def _read_until(proc: subprocess.Popen, needle: str, seen: bytearray, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            chunk = b""
        seen += chunk
        text = seen.decode("utf-8", errors="replace")
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"no apareció {needle!r}; salida: {bytes(seen)!r}")


def test_tail_follow_sees_new_events_across_a_rotation(home, instance):
    _fill(instance, 1, actor="antes")
    env = {**os.environ, "EMTP_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([EMTP_ADMIN, "audit", "tail", "-n", "1", "--follow"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    seen = bytearray()
    try:
        _read_until(proc, "usuario: antes", seen)
        time.sleep(0.5)
        _fill(instance, 1, actor="durante")
        _read_until(proc, "usuario: durante", seen)
        _fill(instance, 1, actor="justo-antes-de-rotar")
        os.rename(instance.audit.path, instance.audit.path.with_name("audit.jsonl.1"))
        _fill(instance, 1, actor="despues")
        out = _read_until(proc, "usuario: despues", seen)
        assert "usuario: justo-antes-de-rotar" in out
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)


def test_reindex(run_cli, instance):
    _fill(instance, 7)
    r = run_cli("audit", "reindex")
    assert r.returncode == 0 and r.stdout.startswith("Índice de auditoría actualizado: 7 eventos nuevos")
    r = run_cli("audit", "reindex", "--full")
    assert r.returncode == 0 and r.stdout.startswith("Índice de auditoría reconstruido: 7 eventos nuevos")


def test_tail_neutralises_terminal_escapes_in_attempted_usernames(run_cli, instance):
    instance.audit.append("login", actor="\x1b[2J\x1b[31mroot\nfalso", success=False, detail={"reason": "unknown_user"})
    r = run_cli("audit", "tail", "-n", "1")
    assert "\x1b" not in r.stdout and r.stdout.count("\n") == 1
    assert "usuario: \\x1b[2J\\x1b[31mroot\\x0afalso" in r.stdout
