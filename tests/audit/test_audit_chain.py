"""The hash chain: concurrent appends from real processes, and verify() catching tampering."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import shutil
from pathlib import Path

from visualizador_emtp.audit.chain import AuditLog

PROCS, PER_PROC = 8, 1000


def _appender(path: str, state: str, worker: int, n: int, start) -> None:
    log = AuditLog(Path(path), Path(state))
    start.wait()
    for i in range(n):
        log.append("page_view", actor=f"w{worker}", detail={"page": "resumen", "i": i})


def _make_log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "logs" / "audit.jsonl", tmp_path / "run")


def _fill(log: AuditLog, n: int, prefix: str = "u") -> None:
    for i in range(n):
        log.append("login", actor=f"{prefix}{i}", success=i % 3 != 0, ip="10.1.1.1", detail={"reason": "ok"})


def _lines(p: Path) -> list[str]:
    return p.read_text(encoding="utf-8").splitlines(keepends=True)


def test_eight_processes_append_a_single_intact_chain(tmp_path):
    log = _make_log(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_appender, args=(str(log.path), str(log.state_dir), w, PER_PROC, start))
             for w in range(PROCS)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lines = _lines(log.path)
    assert len(lines) == PROCS * PER_PROC
    records = [json.loads(line) for line in lines]  # every line is whole JSON: nothing interleaved
    for w in range(PROCS):
        mine = [r["detail"]["i"] for r in records if r["actor"] == f"w{w}"]
        assert mine == list(range(PER_PROC))  # each process's appends are all there, in order
    for prev, cur in zip(records, records[1:]):
        assert cur["prev"] == prev["hash"]
    result = log.verify()
    assert result.ok, result.problems[:5]
    assert result.lines == PROCS * PER_PROC


def test_intact_log_verifies(tmp_path):
    log = _make_log(tmp_path)
    _fill(log, 20)
    result = log.verify()
    assert result.ok and result.lines == 20 and result.files == ["audit.jsonl"]


def test_edited_line_is_reported_with_file_and_line(tmp_path):
    log = _make_log(tmp_path)
    _fill(log, 20)
    lines = _lines(log.path)
    lines[6] = lines[6].replace('"actor":"u6"', '"actor":"intruso"')
    log.path.write_text("".join(lines), encoding="utf-8")
    result = log.verify()
    assert not result.ok
    assert result.problems == ["audit.jsonl:7: el contenido fue modificado"]


def test_edited_line_with_recomputed_hash_breaks_the_next_link(tmp_path):
    from visualizador_emtp.audit.chain import _line_hash

    log = _make_log(tmp_path)
    _fill(log, 10)
    lines = _lines(log.path)
    rec = json.loads(lines[3])
    rec["success"] = True
    rec["hash"] = _line_hash(rec["prev"], rec)
    lines[3] = json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"
    log.path.write_text("".join(lines), encoding="utf-8")
    result = log.verify()
    assert result.problems == ["audit.jsonl:5: la cadena se rompe (falta o se eliminó una línea anterior)"]


def test_deleted_line_is_reported(tmp_path):
    log = _make_log(tmp_path)
    _fill(log, 20)
    lines = _lines(log.path)
    del lines[9]
    log.path.write_text("".join(lines), encoding="utf-8")
    result = log.verify()
    assert result.problems == ["audit.jsonl:10: la cadena se rompe (falta o se eliminó una línea anterior)"]


def test_deleted_first_line_is_reported(tmp_path):
    log = _make_log(tmp_path)
    _fill(log, 5)
    log.path.write_text("".join(_lines(log.path)[1:]), encoding="utf-8")
    result = log.verify()
    assert result.problems == ["audit.jsonl:1: el archivo no comienza la cadena (se eliminaron líneas iniciales)"]


def test_truncated_file_is_reported(tmp_path):
    log = _make_log(tmp_path)
    _fill(log, 20)
    log.path.write_text("".join(_lines(log.path)[:15]), encoding="utf-8")
    result = log.verify()
    assert not result.ok
    assert result.problems == ["faltan líneas al final del registro (archivo truncado)"]


def test_emptied_file_is_reported(tmp_path):
    log = _make_log(tmp_path)
    _fill(log, 3)
    log.path.write_text("", encoding="utf-8")
    result = log.verify()
    assert result.problems == ["el registro está vacío pero se esperaban líneas (archivo truncado o eliminado)"]


def test_chain_continues_across_a_rotation(tmp_path):
    log = _make_log(tmp_path)
    _fill(log, 10)
    os.rename(log.path, log.path.with_name("audit.jsonl.1"))
    _fill(log, 5, prefix="n")
    first_new = json.loads(_lines(log.path)[0])
    last_old = json.loads(_lines(log.path.with_name("audit.jsonl.1"))[-1])
    assert first_new["prev"] == last_old["hash"]
    result = log.verify()
    assert result.ok, result.problems
    assert result.files == ["audit.jsonl.1", "audit.jsonl"] and result.lines == 15


def test_chain_continues_across_gzipped_rotations(tmp_path):
    log = _make_log(tmp_path)
    _fill(log, 10, prefix="a")
    os.rename(log.path, log.path.with_name("audit.jsonl.1"))
    _fill(log, 10, prefix="b")
    # second rotation: .1 → .2.gz (compressed), audit.jsonl → .1
    old = log.path.with_name("audit.jsonl.1")
    with open(old, "rb") as src, gzip.open(log.path.with_name("audit.jsonl.2.gz"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    old.unlink()
    os.rename(log.path, old)
    _fill(log, 3, prefix="c")
    result = log.verify()
    assert result.ok, result.problems
    assert result.files == ["audit.jsonl.2.gz", "audit.jsonl.1", "audit.jsonl"] and result.lines == 23


def test_rotation_with_empty_new_file_appends_after_gzipped_tail(tmp_path):
    log = _make_log(tmp_path)
    _fill(log, 4)
    with open(log.path, "rb") as src, gzip.open(log.path.with_name("audit.jsonl.1.gz"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    log.path.unlink()
    log.append("logout", actor="ana")
    assert log.verify().ok


def test_line_deleted_at_the_end_of_a_rotated_file_is_reported(tmp_path):
    log = _make_log(tmp_path)
    _fill(log, 10)
    rotated = log.path.with_name("audit.jsonl.1")
    os.rename(log.path, rotated)
    _fill(log, 5, prefix="n")
    rotated.write_text("".join(_lines(rotated)[:-1]), encoding="utf-8")
    result = log.verify()
    assert result.problems == ["audit.jsonl:1: la cadena se rompe (falta o se eliminó una línea anterior)"]


def test_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    """A crash mid-write leaves a line without newline; the next append must start a new line."""
    log = _make_log(tmp_path)
    _fill(log, 3)
    with open(log.path, "ab") as f:
        f.write(b'{"ts":"2025-01-01T00:00:00.000Z","event":"log')  # torn, no newline
    rec = log.append("logout", actor="ana")
    lines = _lines(log.path)
    assert json.loads(lines[-1])["hash"] == rec["hash"]  # the new record is whole on its own line
    result = log.verify()
    assert result.problems == ["audit.jsonl:4: línea ilegible o sin hash"]  # only the torn line
    log.append("logout", actor="beto")
    assert log.verify().problems == ["audit.jsonl:4: línea ilegible o sin hash"]
