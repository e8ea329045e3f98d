"""SQL Server reader through a real ODBC stack: unixODBC + psqlODBC + PostgreSQL server.

The table mimics SIGE ("dbo.matricula_alumno", all levels, extra columns); the refresh uses the
shipped default SQL Server query unchanged (it is also valid PostgreSQL).
"""

import json
import os
import socket
import threading

import psycopg
import pytest

from .conftest import current_version, raw_mineduc, small_table

pytestmark = pytest.mark.odbc

COLS = ["AGNO", "RBD", "DGV_RBD", "NOM_RBD", "COD_REG_RBD", "COD_COM_RBD", "NOM_COM_RBD", "COD_DEPE", "COD_DEPE2",
        "RURAL_RBD", "ESTADO_ESTAB", "COD_ENSE", "COD_GRADO", "LET_CUR", "COD_DES_CUR", "MRUN", "GEN_ALU",
        "EDAD_ALU", "COD_RAMA", "COD_SEC", "COD_ESPE", "COD_MEN"]
TEXT = {"NOM_RBD", "NOM_COM_RBD", "LET_CUR"}


def _load(db, rows):
    ddl = ", ".join(f"{c.lower()} {'text' if c in TEXT else 'bigint' if c == 'MRUN' else 'integer'}" for c in COLS)
    with psycopg.connect(host=db["host"], port=db["port"], dbname=db["database"], user=db["user"],
                         password=db["password"]) as con:
        con.execute("CREATE SCHEMA dbo")
        con.execute(f"CREATE TABLE dbo.matricula_alumno ({ddl})")
        with con.cursor().copy(f"COPY dbo.matricula_alumno ({', '.join(c.lower() for c in COLS)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row([None if r.get(c, "") == "" else r.get(c) for c in COLS])


def _configure(home, db, *, driver="PostgreSQL Unicode", port=None, password=None, mode=0o600, timeout=10):
    cfg = home / "config/visualizador-emtp.toml"
    cs = (f"DRIVER={{{driver}}};SERVER={db['host']};PORT={port or db['port']};DATABASE={db['database']};"
          f"UseDeclareFetch=1;Fetch=5000")
    cfg.write_text(cfg.read_text() + f'\n[sqlserver]\nconnection_string = "{cs}"\ntimeout_seconds = {timeout}\n'
                   f"batch_rows = 20000\n")
    cred = home / "config/sqlserver_credentials"
    cred.write_text(f"# credenciales\nUID={db['user']}\nPWD={password or db['password']}\n")
    os.chmod(cred, mode)


@pytest.fixture
def loaded_db(pg_db):
    rows = raw_mineduc(small_table())
    _load(pg_db, rows)
    return pg_db


def test_refresh_from_odbc_end_to_end(home, run_cli, loaded_db):
    _configure(home, loaded_db)
    r = run_cli("refresh", "--source", "sqlserver")
    assert r.returncode == 0, r.stderr
    m = json.loads((home / "data/processed/current/manifest.json").read_text())
    assert m["rows"] == len(small_table())  # H-C, 1° medio, artistic, recess and básica filtered by the query
    assert m["source"]["kind"] == "sqlserver"
    assert loaded_db["password"] not in json.dumps(m)
    for log in ("actualizacion_datos.log", "audit.jsonl", "MANTENIMIENTO.log", "app.log"):
        p = home / "logs" / log
        assert not p.exists() or loaded_db["password"] not in p.read_text()
    assert "consulta por defecto" in r.stdout


def test_test_connections_ok_and_failures(home, run_cli, loaded_db):
    _configure(home, loaded_db)
    r = run_cli("test-connections")
    assert r.returncode == 0, r.stderr
    assert "PostgreSQL Unicode" in r.stdout and "Conexión correcta" in r.stdout and "SELECT 1" in r.stdout
    assert loaded_db["password"] not in r.stdout + r.stderr


def test_driver_missing(home, run_cli, pg_db):
    _configure(home, pg_db, driver="ODBC Driver 18 for SQL Server")
    r = run_cli("test-connections")
    assert r.returncode == 10 and "no está instalado" in r.stderr
    r = run_cli("refresh", "--source", "sqlserver")
    assert r.returncode == 10 and current_version(home) is None


def test_login_failed(home, run_cli, pg_db):
    _configure(home, pg_db, password="incorrecta")
    r = run_cli("test-connections")
    assert r.returncode == 12 and "rechazó el usuario o la contraseña" in r.stderr
    assert "incorrecta" not in r.stderr


def test_host_unreachable(home, run_cli, pg_db):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    _configure(home, pg_db, port=port)
    r = run_cli("test-connections")
    assert r.returncode == 11 and "No se pudo conectar" in r.stderr


def test_timeout(home, run_cli, pg_db):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    held = []
    threading.Thread(target=lambda: held.append(srv.accept()), daemon=True).start()
    _configure(home, pg_db, port=srv.getsockname()[1], timeout=2)
    r = run_cli("test-connections")
    srv.close()
    assert r.returncode == 13 and "tiempo de espera" in r.stderr


def test_credentials_file_must_be_private(home, run_cli, pg_db):
    _configure(home, pg_db, mode=0o644)
    r = run_cli("test-connections")
    assert r.returncode == 2 and "0600" in r.stderr


def test_odbc_bad_rows_reported(home, run_cli, pg_db):
    rows = raw_mineduc(small_table().slice(0, 500), extra_levels=False)
    rows[10]["COD_ESPE"] = 12345
    rows[11]["EDAD_ALU"] = -1
    _load(pg_db, rows)
    _configure(home, pg_db)
    r = run_cli("refresh", "--source", "sqlserver")
    assert r.returncode == 4
    assert "columna COD_ESPE, valor «12345»" in r.stderr and "columna EDAD_ALU, valor «-1»" in r.stderr
    assert current_version(home) is None
