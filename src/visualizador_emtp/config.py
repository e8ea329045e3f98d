"""Settings: one TOML file in EMTP_HOME/config, overridable by EMTP_* variables.

Every setting is declared once in ``SETTINGS`` (section, key, type, default, help).
The environment variable for ``[server] bind`` is ``EMTP_SERVER_BIND``.
``docs/CONFIGURACION.md`` documents every key; a test keeps both in sync.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HOME = "/opt/apps/visualizador-emtp"
CONFIG_FILENAME = "visualizador-emtp.toml"


class ConfigError(Exception):
    """A bad or missing setting. The message is one Spanish line for the operator."""


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    type: type
    default: Any
    help: str

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env(self) -> str:
        return f"EMTP_{self.section}_{self.key}".upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("server", "bind", str, "0.0.0.0:8051", "Dirección y puerto de gunicorn (host:puerto)."),
    Setting("server", "workers", int, 4, "Procesos de gunicorn."),
    Setting("server", "timeout", int, 60, "Segundos antes de que gunicorn reinicie un proceso colgado."),
    Setting("server", "base_url", str, "", "URL pública (informativa; usada en mensajes y doctor)."),
    Setting("server", "trusted_proxies", int, 0, "Proxies inversos delante de la app (1 con nginx): se confía en X-Forwarded-For/Proto de ese número de saltos."),
    Setting("security", "bcrypt_rounds", int, 12, "Costo de bcrypt para contraseñas nuevas (10–16)."),
    Setting("security", "session_idle_minutes", int, 30, "Minutos de inactividad antes de cerrar la sesión."),
    Setting("security", "cookie_secure", bool, False, "Marca la cookie de sesión como Secure (activar detrás de HTTPS)."),
    Setting("security", "lockout_max_failures", int, 5, "Intentos fallidos (por usuario o IP) antes del bloqueo."),
    Setting("security", "lockout_window_minutes", int, 15, "Ventana en que se cuentan los intentos fallidos."),
    Setting("security", "lockout_minutes", int, 15, "Duración del bloqueo."),
    Setting("database", "url", str, "", "URL SQLAlchemy de users.db; vacío = sqlite en data/users.db. Acepta postgresql+psycopg://…"),
    Setting("database", "busy_timeout_ms", int, 15000, "Espera máxima de SQLite ante un bloqueo de escritura."),
    Setting("data", "stale_days", int, 8, "Días tras los cuales los datos se consideran desactualizados."),
    Setting("data", "keep_versions", int, 5, "Versiones anteriores de datos que se conservan para --rollback."),
    Setting("data", "source", str, "parquet", "Fuente por defecto de refresh: sqlserver, csv, rds o parquet."),
    Setting("data", "source_path", str, "", "Archivo o carpeta de origen para las fuentes csv, rds y parquet."),
    Setting("sqlserver", "driver", str, "FreeTDS", "Nombre del driver ODBC (odbcinst -q -d), p. ej. 'ODBC Driver 18 for SQL Server'."),
    Setting("sqlserver", "server", str, "", "Servidor SQL Server (host o host,puerto)."),
    Setting("sqlserver", "database", str, "", "Base de datos de origen."),
    Setting("sqlserver", "dsn", str, "", "DSN de odbc.ini (alternativa a driver/server/database)."),
    Setting("sqlserver", "connection_string", str, "", "Cadena ODBC completa sin credenciales (alternativa a lo anterior)."),
    Setting("sqlserver", "credentials_file", str, "config/sqlserver_credentials", "Archivo 0600 con UID= y PWD= (ruta relativa al home)."),
    Setting("sqlserver", "query_file", str, "config/refresh.sql", "Consulta SQL de la actualización (ruta relativa al home)."),
    Setting("sqlserver", "timeout_seconds", int, 30, "Tiempo máximo de conexión y consulta."),
    Setting("sqlserver", "batch_rows", int, 50000, "Filas por lote leído con fetchmany."),
    Setting("backup", "dest", str, "/backups/visualizador-emtp", "Carpeta de respaldos."),
    Setting("backup", "retention_days", int, 30, "Días que se conservan los respaldos diarios."),
    Setting("backup", "archive_retention_months", int, 12, "Meses que se conservan los archivos mensuales."),
    Setting("logging", "level", str, "INFO", "Nivel de app.log: DEBUG, INFO, WARNING, ERROR."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, value: Any, origin: str) -> Any:
    t = setting.type
    try:
        if t is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "sí", "si", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(value)
        if t is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(str(value).strip())
        if not isinstance(value, (str, int, float)):
            raise ValueError(value)
        return str(value)
    except (TypeError, ValueError):
        kind = {bool: "verdadero/falso", int: "un número entero", str: "un texto"}[t]
        raise ConfigError(
            f"Configuración inválida: '{setting.name}' debe ser {kind} (valor {value!r} en {origin})."
        ) from None


def _validate(values: dict[str, Any], origin_of: dict[str, str]) -> None:
    def bad(name: str, why: str) -> ConfigError:
        return ConfigError(f"Configuración inválida: '{name}' {why} (en {origin_of[name]}).")

    bind = values["server.bind"]
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise bad("server.bind", "debe tener la forma host:puerto, p. ej. 0.0.0.0:8051")
    if not 0 <= values["server.trusted_proxies"] <= 5:
        raise bad("server.trusted_proxies", "debe estar entre 0 y 5")
    if not 1 <= values["server.workers"] <= 64:
        raise bad("server.workers", "debe estar entre 1 y 64")
    if not 4 <= values["security.bcrypt_rounds"] <= 16:
        raise bad("security.bcrypt_rounds", "debe estar entre 4 y 16")
    for name in ("security.session_idle_minutes", "security.lockout_max_failures",
                 "security.lockout_window_minutes", "security.lockout_minutes",
                 "data.stale_days", "backup.retention_days", "backup.archive_retention_months",
                 "server.timeout", "sqlserver.timeout_seconds", "sqlserver.batch_rows"):
        if values[name] < 1:
            raise bad(name, "debe ser mayor que cero")
    if values["data.keep_versions"] < 1:
        raise bad("data.keep_versions", "debe ser al menos 1")
    if values["data.source"] not in {"sqlserver", "csv", "rds", "parquet"}:
        raise bad("data.source", "debe ser sqlserver, csv, rds o parquet")
    if values["logging.level"].upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise bad("logging.level", "debe ser DEBUG, INFO, WARNING, ERROR o CRITICAL")
    url = values["database.url"]
    if url and not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise bad("database.url", "debe comenzar con sqlite:// o postgresql")


class Paths:
    """Every file and folder of an instance home, named once."""

    def __init__(self, home: Path):
        self.home = home
        self.config_dir = home / "config"
        self.config_file = self.config_dir / CONFIG_FILENAME
        self.secret_key_file = self.config_dir / "secret_key"
        self.data_dir = home / "data"
        self.users_db = self.data_dir / "users.db"
        self.processed_dir = self.data_dir / "processed"
        self.logs_dir = home / "logs"
        self.app_log = self.logs_dir / "app.log"
        self.audit_log = self.logs_dir / "audit.jsonl"
        self.refresh_log = self.logs_dir / "actualizacion_datos.log"
        self.maintenance_log = self.logs_dir / "MANTENIMIENTO.log"
        self.run_dir = self.data_dir / "run"  # lock files, audit index


class Settings:
    """Validated settings of one instance home. ``settings["server.bind"]``."""

    def __init__(self, home: Path, values: dict[str, Any], origin_of: dict[str, str]):
        self.home = home
        self.paths = Paths(home)
        self._values = values
        self.origin_of = origin_of

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def home_path(self, name: str) -> Path:
        """A setting holding a path, resolved against the home when relative."""
        p = Path(self[name])
        return p if p.is_absolute() else self.home / p

    @property
    def database_url(self) -> str:
        return self["database.url"] or f"sqlite:///{self.paths.users_db}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def secret_key(self) -> bytes:
        f = self.paths.secret_key_file
        try:
            key = f.read_bytes().strip()
        except FileNotFoundError:
            raise ConfigError(
                f"Falta la clave secreta {f}: ejecute 'emtp-admin init' para crearla."
            ) from None
        except PermissionError:
            raise ConfigError(f"Sin permiso para leer la clave secreta {f}.") from None
        if len(key) < 32:
            raise ConfigError(f"La clave secreta {f} es demasiado corta: ejecute 'emtp-admin init --rotate-secret'.")
        return key


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    return Path(home or os.environ.get("EMTP_HOME") or DEFAULT_HOME).expanduser().resolve()


def load_settings(home: str | os.PathLike | None = None, env: dict[str, str] | None = None,
                  overrides: dict[str, Any] | None = None) -> Settings:
    """Read defaults ← TOML file ← EMTP_* environment ← explicit overrides."""
    env = os.environ if env is None else env
    home_path = resolve_home(home)
    config_file = Paths(home_path).config_file
    values = {s.name: s.default for s in SETTINGS}
    origin_of = {s.name: "valor por defecto" for s in SETTINGS}

    if config_file.exists():
        try:
            raw = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"El archivo de configuración {config_file} no es TOML válido: {exc}.") from None
        except PermissionError:
            raise ConfigError(f"Sin permiso para leer {config_file}.") from None
        for section, table in raw.items():
            if not isinstance(table, dict):
                raise ConfigError(f"Configuración inválida: '{section}' debe ser una sección [{section}] (en {config_file}).")
            for key, value in table.items():
                name = f"{section}.{key}"
                if name not in _BY_NAME:
                    raise ConfigError(f"Configuración desconocida: '{name}' (en {config_file}).")
                values[name] = _coerce(_BY_NAME[name], value, str(config_file))
                origin_of[name] = str(config_file)

    for s in SETTINGS:
        if s.env in env:
            values[s.name] = _coerce(s, env[s.env], f"la variable {s.env}")
            origin_of[s.name] = f"la variable {s.env}"

    for name, value in (overrides or {}).items():
        if name not in _BY_NAME:
            raise ConfigError(f"Configuración desconocida: '{name}'.")
        values[name] = _coerce(_BY_NAME[name], value, "los argumentos")
        origin_of[name] = "los argumentos"

    _validate(values, origin_of)
    values["logging.level"] = values["logging.level"].upper()
    return Settings(home_path, values, origin_of)


def default_config_text() -> str:
    """The commented TOML written by ``emtp-admin init``."""
    lines = ["# Configuración de Visualizador EMTP.",
             "# Cada clave puede sobrescribirse con la variable EMTP_<SECCIÓN>_<CLAVE>.",
             "# Referencia completa: docs/CONFIGURACION.md", ""]
    section = None
    for s in SETTINGS:
        if s.section != section:
            section = s.section
            lines += ["", f"[{section}]"]
        default = s.default
        if isinstance(default, bool):
            rendered = "true" if default else "false"
        elif isinstance(default, int):
            rendered = str(default)
        else:
            rendered = '"' + str(default).replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.append(f"# {s.help}")
        lines.append(f"# {s.key} = {rendered}")
    return "\n".join(lines) + "\n"
