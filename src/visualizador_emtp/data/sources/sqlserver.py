"""SQL Server (or any ODBC database) through pyodbc, streamed with fetchmany.

Connection: ``[sqlserver] connection_string`` or ``dsn`` or ``driver``/``server``/``database``.
Credentials never live in the TOML: ``UID=``/``PWD=`` lines in a 0600 file
(``sqlserver.credentials_file``) or the variables EMTP_SQLSERVER_UID / EMTP_SQLSERVER_PWD.
The query comes from ``sqlserver.query_file`` (default shipped in data/sql/refresh_sqlserver.sql).
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa

from visualizador_emtp.data.coerce import SourceError
from visualizador_emtp.data.sources import Source

# exit codes shared by refresh and test-connections
EXIT_DRIVER = 10
EXIT_UNREACHABLE = 11
EXIT_LOGIN = 12
EXIT_TIMEOUT = 13
EXIT_QUERY = 14
EXIT_CONFIG = 2


def default_query() -> str:
    return resources.files("visualizador_emtp.data").joinpath("sql/refresh_sqlserver.sql").read_text("utf-8")


def _quote(value: str) -> str:
    return "{" + value.replace("}", "}}") + "}" if any(c in value for c in ";{}= ") else value


def read_credentials(settings) -> tuple[str | None, str | None]:
    uid = pwd = None
    path = settings.home_path("sqlserver.credentials_file")
    if path.exists():
        st = path.stat()
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SourceError(f"El archivo de credenciales {path} tiene permisos {oct(st.st_mode & 0o777)}: "
                              f"debe ser 0600 (chmod 600 {path}).", EXIT_CONFIG)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"No se pudo leer el archivo de credenciales {path}: {exc}.", EXIT_CONFIG) from None
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, _, v = line.partition("=")
            if k.strip().upper() == "UID":
                uid = v.strip()
            elif k.strip().upper() == "PWD":
                pwd = v.strip()
    uid = os.environ.get("EMTP_SQLSERVER_UID", uid)
    pwd = os.environ.get("EMTP_SQLSERVER_PWD", pwd)
    return uid, pwd


def connection_string(settings, with_credentials: bool = True) -> str:
    cs = settings["sqlserver.connection_string"].strip()
    if cs:
        if any(p.strip().upper().startswith(("PWD=", "PASSWORD=")) for p in cs.split(";")):
            raise SourceError("sqlserver.connection_string no debe incluir la contraseña: use el archivo de "
                              "credenciales (0600) o EMTP_SQLSERVER_PWD.", EXIT_CONFIG)
        parts = [cs.rstrip(";")]
    elif settings["sqlserver.dsn"]:
        parts = [f"DSN={_quote(settings['sqlserver.dsn'])}"]
    else:
        if not settings["sqlserver.server"]:
            raise SourceError("Falta configurar [sqlserver] server (o dsn o connection_string) en "
                              "visualizador-emtp.toml.", EXIT_CONFIG)
        parts = [f"DRIVER={{{settings['sqlserver.driver']}}}", f"SERVER={_quote(settings['sqlserver.server'])}"]
        if settings["sqlserver.database"]:
            parts.append(f"DATABASE={_quote(settings['sqlserver.database'])}")
    if with_credentials:
        uid, pwd = read_credentials(settings)
        if uid:
            parts.append(f"UID={_quote(uid)}")
        if pwd:
            parts.append(f"PWD={_quote(pwd)}")
    return ";".join(parts) + ";"


def configured_driver(settings) -> str | None:
    """The driver name the configuration relies on (None for a DSN, resolved by odbc.ini)."""
    cs = settings["sqlserver.connection_string"]
    if cs:
        for p in cs.split(";"):
            k, _, v = p.partition("=")
            if k.strip().upper() == "DRIVER":
                return v.strip().strip("{}")
        return None
    if settings["sqlserver.dsn"]:
        return None
    return settings["sqlserver.driver"]


@dataclass
class OdbcFailure:
    kind: str        # driver | unreachable | login | timeout | query | other
    message: str     # Spanish
    exit_code: int


def classify(exc: Exception, settings=None) -> OdbcFailure:
    """Turn a pyodbc error into a Spanish message and an exit code (never echoes credentials)."""
    state = str(exc.args[0]) if getattr(exc, "args", None) else ""
    text = " ".join(str(a) for a in getattr(exc, "args", ()))
    low = text.lower()
    target = ""
    if settings is not None:
        target = settings["sqlserver.server"] or settings["sqlserver.dsn"] or "(cadena de conexión)"
    if state == "IM002" or "can't open lib" in low or "data source name not found" in low:
        return OdbcFailure("driver", "No se encontró el driver ODBC o el DSN configurado "
                           "(revise 'odbcinst -q -d' y [sqlserver] driver/dsn).", EXIT_DRIVER)
    if state in ("28000", "28P01") or "login failed" in low or "password authentication failed" in low \
            or "authentication failed" in low:
        return OdbcFailure("login", f"El servidor {target} rechazó el usuario o la contraseña "
                           f"(revise el archivo de credenciales).", EXIT_LOGIN)
    if state in ("HYT00", "HYT01") or "timeout" in low or "timed out" in low:
        return OdbcFailure("timeout", f"Se agotó el tiempo de espera al conectar o consultar {target}.",
                           EXIT_TIMEOUT)
    if state in ("08001", "08S01", "08004") or "could not connect" in low or "connection refused" in low \
            or "unable to connect" in low or "could not translate host" in low or "name or service" in low \
            or "server is not found" in low or "adaptive server is unavailable" in low:
        return OdbcFailure("unreachable", f"No se pudo conectar con el servidor {target} "
                           f"(host inaccesible, puerto cerrado o nombre desconocido).", EXIT_UNREACHABLE)
    if state.startswith("42") or "syntax" in low or "does not exist" in low or "invalid object name" in low:
        return OdbcFailure("query", f"La consulta falló en el servidor: {_first_line(text)}", EXIT_QUERY)
    return OdbcFailure("other", f"Error ODBC {state}: {_first_line(text)}", EXIT_QUERY)


def _first_line(text: str) -> str:
    import re
    text = re.sub(r"(?i)(PWD|PASSWORD)=[^;]*", r"\1=***", text)
    return text.strip().splitlines()[0][:300] if text.strip() else "sin detalle"


def connect(settings):
    import pyodbc

    driver = configured_driver(settings)
    if driver and driver not in pyodbc.drivers():
        raise SourceError(f"El driver ODBC '{driver}' no está instalado. Instalados: "
                          f"{', '.join(pyodbc.drivers()) or 'ninguno'}.", EXIT_DRIVER)
    cs = connection_string(settings)
    timeout = settings["sqlserver.timeout_seconds"]
    try:
        conn = pyodbc.connect(cs, timeout=timeout, autocommit=True)
    except pyodbc.Error as exc:
        f = classify(exc, settings)
        raise SourceError(f.message, f.exit_code) from None
    try:
        conn.timeout = timeout  # query timeout; some drivers (psqlODBC) do not support it
    except pyodbc.Error:
        pass
    return conn


def query_text(settings) -> tuple[str, Path | None]:
    path = settings.home_path("sqlserver.query_file")
    if path.exists():
        try:
            return path.read_text(encoding="utf-8"), path
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"No se pudo leer la consulta {path}: {exc}.", EXIT_CONFIG) from None
    return default_query(), None


class SqlServerSource(Source):
    kind = "sqlserver"

    def __init__(self, settings):
        self.settings = settings
        self.batch_rows = settings["sqlserver.batch_rows"]
        self.query, self.query_path = query_text(settings)
        self.notes: list[str] = []
        if self.query_path is None:
            self.notes.append("consulta por defecto (no existe " + str(settings.home_path("sqlserver.query_file")) + ")")

    def describe(self) -> str:
        return "sqlserver: " + connection_string(self.settings, with_credentials=False)

    def batches(self):
        import pyodbc

        conn = connect(self.settings)
        try:
            cur = conn.cursor()
            try:
                cur.execute(self.query)
            except pyodbc.Error as exc:
                f = classify(exc, self.settings)
                raise SourceError(f.message, f.exit_code) from None
            if cur.description is None:
                raise SourceError("La consulta no devolvió filas (¿no es un SELECT?).", EXIT_QUERY)
            names = [d[0] for d in cur.description]
            offset = 0
            while True:
                try:
                    rows = cur.fetchmany(self.batch_rows)
                except pyodbc.Error as exc:
                    f = classify(exc, self.settings)
                    raise SourceError(f.message, f.exit_code) from None
                if not rows:
                    break
                cols = list(zip(*rows))
                arrays = []
                for name, col in zip(names, cols):
                    try:
                        arrays.append(pa.array(col))
                    except (pa.ArrowException, TypeError):
                        arrays.append(pa.array([None if v is None else str(v) for v in col], pa.string()))
                t = pa.Table.from_arrays(arrays, names=names)
                idx = np.arange(offset + 1, offset + len(t) + 1, dtype=np.int64)
                offset += len(t)
                del rows, cols
                yield t, idx
        finally:
            conn.close()


def test_connection(settings) -> dict:
    """Connect, run SELECT 1 and time it. Raises SourceError with a specific exit code."""
    import pyodbc

    t0 = time.perf_counter()
    conn = connect(settings)
    t1 = time.perf_counter()
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        value = cur.fetchone()[0]
    except pyodbc.Error as exc:
        f = classify(exc, settings)
        raise SourceError(f.message, f.exit_code) from None
    finally:
        conn.close()
    t2 = time.perf_counter()
    return {"connect_s": t1 - t0, "query_s": t2 - t1, "value": value}
