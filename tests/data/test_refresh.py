"""Refresh: lock, validation, row-drop guard, atomic swap under SIGKILL, rollback, logs, audit, reload."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from visualizador_emtp.audit.chain import AuditLog
from visualizador_emtp.data import cube as cube_mod
from visualizador_emtp.data.refresh import refresh_lock

from .conftest import current_version, demo_table, small_table, write_parquet


def _refresh(run_cli, path, *extra, env=None):
    return run_cli("refresh", "--source", "parquet", "--path", str(path), *extra, env=env)


def test_refresh_publishes_logs_and_audits(home, run_cli, small_parquet):
    r = _refresh(run_cli, small_parquet, env={"SUDO_USER": "mgonzalez"})
    assert r.returncode == 0, r.stderr
    n = len(small_table())
    assert f"{n:,}".replace(",", ".") in r.stdout
    log = (home / "logs/actualizacion_datos.log").read_text()
    assert re.search(r"✅ Actualización completada: \d{1,3}\.\d{3} registros procesados", log)
    maint = (home / "logs/MANTENIMIENTO.log").read_text().splitlines()
    assert re.fullmatch(r"\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}\] - Actualización de datos \(parquet\): .* - TI: mgonzalez",
                        maint[-1])
    events = [json.loads(x) for x in (home / "logs/audit.jsonl").read_text().splitlines()]
    ev = [e for e in events if e["event"] == "data_refresh"][-1]
    assert ev["success"] is True and ev["detail"]["rows"] == n
    assert AuditLog(home / "logs/audit.jsonl", home / "data/run").verify().ok
    vdir = home / "data/processed/current"
    m = json.loads((vdir / "manifest.json").read_text())
    assert m["schema_version"] == 1 and m["source"]["kind"] == "parquet" and m["created_at"]
    from visualizador_emtp.data.store import sha256_file
    for name, info in m["files"].items():
        assert sha256_file(vdir / name) == info["sha256"]


def test_dry_run_publishes_nothing(home, run_cli, small_parquet):
    r = _refresh(run_cli, small_parquet, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "no se publicó nada" in r.stdout
    assert current_version(home) is None


def test_second_refresh_is_refused_while_one_runs(home, run_cli, small_parquet):
    with refresh_lock(home / "data" / "run"):
        r = _refresh(run_cli, small_parquet)
    assert r.returncode == 3
    assert "Ya hay una actualización de datos en curso" in r.stderr
    assert current_version(home) is None
    assert _refresh(run_cli, small_parquet).returncode == 0  # lock released


def test_invalid_rows_reported_nothing_published(tmp_path, home, run_cli, small_parquet):
    assert _refresh(run_cli, small_parquet).returncode == 0
    before = current_version(home)
    t = demo_table((2025,)).slice(0, 1000)
    espe = t["COD_ESPE"].to_pylist()
    espe[3] = 41999
    age = t["EDAD_ALU"].to_pylist()
    age[5] = -2
    t = t.set_column(t.schema.get_field_index("COD_ESPE"), "COD_ESPE", pa.array(espe, pa.int32()))
    t = t.set_column(t.schema.get_field_index("EDAD_ALU"), "EDAD_ALU", pa.array(age, pa.int8()))
    bad = write_parquet(tmp_path / "bad.parquet", t)
    r = _refresh(run_cli, bad)
    assert r.returncode == 4
    assert "fila 4, columna COD_ESPE, valor «41999»: código desconocido en el catálogo" in r.stderr
    assert "fila 6, columna EDAD_ALU, valor «-2»: fuera del rango plausible" in r.stderr
    assert current_version(home) == before
    log = (home / "logs/actualizacion_datos.log").read_text()
    assert "❌ Actualización fallida" in log
    events = [json.loads(x) for x in (home / "logs/audit.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "data_refresh" and events[-1]["success"] is False


def test_drop_over_20_percent_needs_force(tmp_path, home, run_cli, small_parquet):
    assert _refresh(run_cli, small_parquet).returncode == 0
    before = current_version(home)
    t = small_table()
    small = t.filter(pc.or_(pc.equal(t["AGNO"], 2024), pc.less(t["RBD"], 6000)))
    p = write_parquet(tmp_path / "menos.parquet", small)
    r = _refresh(run_cli, p)
    assert r.returncode == 5 and "2025:" in r.stderr and "--force" in r.stderr
    assert current_version(home) == before
    r = _refresh(run_cli, p, "--force")
    assert r.returncode == 0, r.stderr
    assert current_version(home) != before


def test_keep_versions_and_rollback(home, run_cli, small_parquet):
    cfg = home / "config/visualizador-emtp.toml"
    cfg.write_text(cfg.read_text() + "\n[data]\nkeep_versions = 2\n")
    published = []
    for _ in range(4):
        assert _refresh(run_cli, small_parquet).returncode == 0
        published.append(current_version(home))
    versions = sorted(os.listdir(home / "data/processed/versions"))
    assert versions == published[-3:]  # current + 2 previous
    r = run_cli("refresh", "--rollback")
    assert r.returncode == 0, r.stderr
    assert current_version(home) == published[-2]
    assert "Reversión de datos completada" in (home / "logs/MANTENIMIENTO.log").read_text()
    assert run_cli("refresh", "--rollback").returncode == 0
    assert current_version(home) == published[-3]
    r = run_cli("refresh", "--rollback")
    assert r.returncode == 7 and "No hay una versión anterior" in r.stderr


@pytest.mark.parametrize("phase", ["write", "cube", "verified", "renamed"])
def test_sigkill_during_write_or_swap_keeps_previous(tmp_path, home, run_cli, small_parquet, phase):
    assert _refresh(run_cli, small_parquet).returncode == 0
    before = current_version(home)
    served = cube_mod.get_cube(home / "data/processed")
    total_before = served.kpis()["total"]
    p2 = write_parquet(tmp_path / "nuevo.parquet", small_table().slice(1000))
    r = _refresh(run_cli, p2, env={"EMTP_TEST_CRASH_AT": phase})
    assert r.returncode == -9, (phase, r.returncode, r.stderr)
    assert current_version(home) == before
    cube_mod.clear_cache()
    c = cube_mod.get_cube(home / "data/processed")
    assert c.version == before and c.kpis()["total"] == total_before
    # the next refresh cleans up the leftovers and publishes
    r = _refresh(run_cli, p2)
    assert r.returncode == 0, r.stderr
    leftovers = [p.name for p in (home / "data/processed").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_sigkill_after_swap_serves_complete_new_version(tmp_path, home, run_cli, small_parquet):
    assert _refresh(run_cli, small_parquet).returncode == 0
    before = current_version(home)
    r = _refresh(run_cli, small_parquet, env={"EMTP_TEST_CRASH_AT": "swapped"})
    assert r.returncode == -9
    assert current_version(home) != before
    c = cube_mod.get_cube(home / "data/processed")
    assert c.kpis()["total"] == len(small_table())


def test_external_sigkill_mid_refresh(tmp_path, home, small_parquet):
    """A real kill -9 from outside at an arbitrary moment (large input so it is still running)."""
    EMTP_ADMIN = str(Path(sys.executable).parent / "emtp-admin")
    env = {**os.environ, "EMTP_HOME": str(home)}
    assert subprocess.run([EMTP_ADMIN, "refresh", "--source", "parquet", "--path", str(small_parquet)],
                          env=env, capture_output=True).returncode == 0
    before = current_version(home)
    p = subprocess.Popen([EMTP_ADMIN, "demo-data", "--years", "2015-2025", "--force"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    p.kill()
    p.wait()
    if p.returncode == -9:
        assert current_version(home) == before
    c = cube_mod.get_cube(home / "data/processed")
    assert c.version == current_version(home)
    assert c.kpis()["total"] > 0


def test_running_app_picks_up_new_version_without_restart(tmp_path, home, run_cli, small_parquet, monkeypatch):
    monkeypatch.setattr(cube_mod, "CHECK_INTERVAL", 0.0)
    processed = home / "data/processed"
    assert cube_mod.get_cube(processed) is None
    assert _refresh(run_cli, small_parquet).returncode == 0
    c1 = cube_mod.get_cube(processed)
    assert c1 is not None and c1.years == (2024, 2025)
    monkeypatch.setattr(cube_mod, "CHECK_INTERVAL", 3600.0)
    assert run_cli("demo-data", "--years", "2023-2025", "--seed", "3").returncode == 0
    assert cube_mod.get_cube(processed) is c1  # still cached within the check interval
    monkeypatch.setattr(cube_mod, "CHECK_INTERVAL", 0.0)
    c2 = cube_mod.get_cube(processed)
    assert c2 is not c1 and c2.years == (2023, 2024, 2025)


def test_corrupted_published_cube_raises_data_unavailable(home, run_cli, small_parquet):
    assert _refresh(run_cli, small_parquet).returncode == 0
    f = home / "data/processed/current/cube_resumen.parquet"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(cube_mod.DataUnavailable) as exc:
        cube_mod.get_cube(home / "data/processed")
    assert "cube_resumen.parquet" in str(exc.value) and "emtp-admin refresh" in str(exc.value)
