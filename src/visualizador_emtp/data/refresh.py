"""Refresh: lock → read (stream) → coerce → validate → write staging → verify → atomic swap.

Nothing reaches ``current`` unless every row passed validation and every written file was read
back intact. Killing the process at any moment leaves the previous version served: the new
version is only renamed into ``versions/`` once complete and fsynced, and ``current`` is
swapped with one rename(2). ``EMTP_TEST_CRASH_AT=<phase>`` (tests only) makes the process
SIGKILL itself at a phase: write, written, cube, manifest, verified, renamed, swapped.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from visualizador_emtp.data import store
from visualizador_emtp.data.coerce import Problem, SourceError, coerce_table, missing_required
from visualizador_emtp.data.cube import CubeBuilder
from visualizador_emtp.fmt import miles, seconds
from visualizador_emtp.data.schema import SCHEMA, SCHEMA_VERSION
from visualizador_emtp.data.validate import check_drop, validate_batch

EXIT_BUSY = 3
EXIT_INVALID = 4
EXIT_DROP = 5
EXIT_NO_PREVIOUS = 7
MAX_PROBLEMS = 200
CRASH_ENV = "EMTP_TEST_CRASH_AT"


class RefreshError(Exception):
    def __init__(self, message: str, exit_code: int = 1, problems: list[Problem] | None = None,
                 bad_values: int = 0):
        super().__init__(message)
        self.exit_code = exit_code
        self.problems = problems or []
        self.bad_values = bad_values


@dataclass
class RefreshResult:
    version: str | None
    rows: int
    years: dict[int, int]
    seconds: float
    source: str
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)
    previous: str | None = None


def _crash_point(phase: str) -> None:
    if os.environ.get(CRASH_ENV) == phase:
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def refresh_lock(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "refresh.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
            except OSError:
                holder = "?"
            raise RefreshError(f"Ya hay una actualización de datos en curso (proceso {holder}). "
                               f"Espere a que termine y vuelva a intentarlo.", EXIT_BUSY) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock (also when the process dies)


def _log(paths, line: str) -> None:
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    fd = os.open(paths.refresh_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, f"[{stamp}] {line}\n".encode("utf-8"))
    finally:
        os.close(fd)


def _record(inst, *, success: bool, message: str, operator: str, detail: dict[str, Any],
            event: str = "data_refresh", short: str | None = None) -> None:
    from visualizador_emtp.ops.maintenance import append_maintenance_line

    _log(inst.paths, message)
    try:
        inst.audit.append(event, actor=f"cli:{operator}", target="datos", success=success, ip="local",
                          user_agent="emtp-admin", detail=detail)
    finally:
        append_maintenance_line(inst.paths, short or message.lstrip("✅❌ ").strip(), operator)


def _verify_file(path: Path, expected_rows: int) -> str:
    """Read a written parquet file back completely; return its sha256."""
    try:
        pf = pq.ParquetFile(path)
        rows = 0
        for rg in range(pf.num_row_groups):
            rows += pf.read_row_group(rg).num_rows
    except (OSError, pa.ArrowException) as exc:
        raise RefreshError(f"La verificación de {path.name} falló: {exc}.") from None
    if rows != expected_rows:
        raise RefreshError(f"La verificación de {path.name} falló: {rows} filas leídas, {expected_rows} escritas.")
    return store.sha256_file(path)


def run_refresh(inst, source, *, dry_run: bool = False, force: bool = False, operator: str = "desconocido",
                progress=None) -> RefreshResult:
    """Run one refresh from ``source``; raises RefreshError/SourceError with a Spanish message."""
    paths = inst.paths
    t0 = time.monotonic()
    processed = paths.processed_dir
    keep = inst.settings["data.keep_versions"]
    say = progress or (lambda msg: None)
    try:
        with refresh_lock(paths.run_dir):
            processed.mkdir(parents=True, exist_ok=True)
            store.versions_dir(processed).mkdir(exist_ok=True)
            leftovers = store.remove_staging(processed)
            if leftovers:
                say(f"Se eliminaron restos de una actualización interrumpida: {', '.join(leftovers)}")
            prev_vid = store.current_target(processed)
            prev_manifest = None
            if prev_vid:
                try:
                    prev_manifest = store.read_manifest(store.versions_dir(processed) / prev_vid)
                except store.StoreError:
                    prev_manifest = None
            result = _refresh_locked(inst, source, processed, prev_vid, prev_manifest, keep, dry_run, force, say)
    except (RefreshError, SourceError) as exc:
        problems = getattr(exc, "problems", [])
        msg = f"❌ Actualización fallida ({_describe(source)}): {exc}"
        if problems:
            msg += " | " + " | ".join(p.message() for p in problems[:5])
        if getattr(exc, "exit_code", 1) != EXIT_BUSY:
            _record(inst, success=False, message=msg, operator=operator,
                    short=f"Actualización de datos fallida ({getattr(source, 'kind', 'fuente')}): {exc}",
                    detail={"source": _describe(source), "error": str(exc), "dry_run": dry_run,
                            "problems": len(problems)})
        raise
    result.seconds = time.monotonic() - t0
    years = ", ".join(f"{y}: {miles(n)}" for y, n in sorted(result.years.items()))
    if dry_run:
        msg = (f"✅ Simulación completada (--dry-run, nada publicado): {miles(result.rows)} registros válidos "
               f"({years}) desde {result.source} en {seconds(result.seconds)}")
    else:
        msg = (f"✅ Actualización completada: {miles(result.rows)} registros procesados ({years}) desde "
               f"{result.source}; versión {result.version}, en {seconds(result.seconds)}")
    short = (f"Simulación de actualización de datos ({source.kind}): {miles(result.rows)} registros válidos"
             if dry_run else f"Actualización de datos ({source.kind}): {miles(result.rows)} registros, "
                             f"versión {result.version}")
    _record(inst, success=True, message=msg, operator=operator, short=short,
            detail={"source": result.source, "rows": result.rows, "version": result.version,
                    "previous": result.previous, "dry_run": dry_run,
                    "years": {str(k): v for k, v in result.years.items()}})
    return result


def _describe(source) -> str:
    try:
        return source.describe()
    except Exception:  # a misconfigured source must still be nameable in the failure line
        return getattr(source, "kind", "fuente")


def _refresh_locked(inst, source, processed: Path, prev_vid, prev_manifest, keep: int, dry_run: bool,
                    force: bool, say) -> RefreshResult:
    vid = store.new_version_id()
    staging = processed / f"{store.STAGING_PREFIX}{vid}"
    writers: dict[int, pq.ParquetWriter] = {}
    rows_per_year: dict[int, int] = {}
    builder = CubeBuilder()
    problems: list[Problem] = []
    counter = [0]
    total = 0
    first_write = True
    if not dry_run:
        staging.mkdir()
    try:
        for raw, rownums in source.batches():
            if not getattr(source, "canonical", False):
                if total == 0 and not counter[0]:
                    missing = missing_required(raw.column_names)
                    if missing:
                        raise RefreshError(f"Faltan columnas obligatorias en la fuente: {', '.join(missing)}.",
                                           EXIT_INVALID)
                t = coerce_table(raw, rownums, problems, counter, MAX_PROBLEMS)
            else:
                t = raw
            validate_batch(t, rownums, problems, counter, MAX_PROBLEMS)
            total += len(t)
            if counter[0]:
                continue  # keep scanning to report, but write nothing more
            t = t.cast(SCHEMA)
            years = t.column("AGNO").to_numpy()
            for y in np.unique(years):
                y = int(y)
                part = t.filter(pa.array(years == y))
                rows_per_year[y] = rows_per_year.get(y, 0) + len(part)
                if not dry_run:
                    w = writers.get(y)
                    if w is None:
                        w = writers[y] = pq.ParquetWriter(staging / f"matricula_{y}.parquet", SCHEMA,
                                                          compression="zstd")
                    w.write_table(part, row_group_size=256_000)
            if not dry_run:
                builder.add(t)
                if first_write:
                    first_write = False
                    _crash_point("write")
            say(f"… {miles(total)} registros leídos")
        if counter[0]:
            raise RefreshError(
                f"La validación encontró {miles(counter[0])} valores inválidos; no se publicó nada.",
                EXIT_INVALID, problems, counter[0])
        if total == 0:
            raise RefreshError("La fuente no entregó ninguna fila EMTP; no se publicó nada.", EXIT_INVALID)
        old_rows = {int(k): int(v["rows"]) for k, v in (prev_manifest or {}).get("years", {}).items()}
        drops = check_drop(rows_per_year, old_rows)
        if drops and not force:
            raise RefreshError("Caída de más de 20 % en filas por año respecto de la versión vigente: "
                               + "; ".join(drops) + ". Revise la fuente o use --force.", EXIT_DROP)
        if dry_run:
            return RefreshResult(None, total, dict(sorted(rows_per_year.items())), 0.0, _describe(source),
                                 dry_run=True, notes=list(getattr(source, "notes", [])), previous=prev_vid)
        for w in writers.values():
            w.close()
        writers.clear()
        _crash_point("written")
        files: dict[str, dict[str, Any]] = {}
        for name, table in builder.finish().items():
            pq.write_table(table, staging / f"{name}.parquet", compression="zstd")
            files[f"{name}.parquet"] = {"rows": len(table)}
        _crash_point("cube")
        for y, n in rows_per_year.items():
            files[f"matricula_{y}.parquet"] = {"rows": n}
        for fname, info in files.items():
            p = staging / fname
            store.fsync_path(p)
            info["sha256"] = _verify_file(p, info["rows"])
            info["bytes"] = p.stat().st_size
        _crash_point("verified")
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "version": vid,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "created_at_local": datetime.now().astimezone().isoformat(timespec="seconds"),
            "source": {"kind": source.kind, "description": _describe(source)},
            "rows": total,
            "years": {str(y): {"rows": n, "file": f"matricula_{y}.parquet",
                               "sha256": files[f"matricula_{y}.parquet"]["sha256"]}
                      for y, n in sorted(rows_per_year.items())},
            "files": files,
            "previous": prev_vid,
            "notes": list(getattr(source, "notes", [])),
        }
        store.write_json_durable(staging / store.MANIFEST, manifest)
        _crash_point("manifest")
        store.fsync_path(staging)
        final = store.versions_dir(processed) / vid
        os.rename(staging, final)
        store.fsync_path(store.versions_dir(processed))
        _crash_point("renamed")
        store.point_current(processed, vid)
        _crash_point("swapped")
        store.prune(processed, keep)
        return RefreshResult(vid, total, dict(sorted(rows_per_year.items())), 0.0, _describe(source),
                             notes=manifest["notes"], previous=prev_vid)
    except BaseException:
        for w in writers.values():
            try:
                w.close()
            except Exception:
                pass
        shutil.rmtree(staging, ignore_errors=True)
        raise


def rollback(inst, operator: str = "desconocido") -> tuple[str, str]:
    """Point ``current`` to the previous version; returns (from, to)."""
    processed = inst.paths.processed_dir
    try:
        with refresh_lock(inst.paths.run_dir):
            cur = store.current_target(processed)
            prev = store.previous_version(processed)
            if prev is None:
                raise RefreshError("No hay una versión anterior a la que volver.", EXIT_NO_PREVIOUS)
            store.point_current(processed, prev)
    except RefreshError as exc:
        if exc.exit_code != EXIT_BUSY:
            _record(inst, success=False, message=f"❌ Reversión de datos fallida: {exc}", operator=operator,
                    detail={"error": str(exc)}, event="data_rollback")
        raise
    rows = store.read_manifest(store.versions_dir(processed) / prev).get("rows", 0)
    _record(inst, success=True, operator=operator, event="data_rollback",
            message=f"✅ Reversión de datos completada: versión {prev} ({miles(rows)} registros) "
                    f"reemplaza a {cur}",
            detail={"from": cur, "to": prev})
    return cur, prev
