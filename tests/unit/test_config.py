"""Settings: TOML + EMTP_* environment, validation with one Spanish line naming key and origin."""

from __future__ import annotations

import pytest

from support import write_config
from visualizador_emtp.config import SETTINGS, ConfigError, load_settings


def test_defaults_and_paths(tmp_path):
    s = load_settings(tmp_path, env={})
    assert s["server.bind"] == "0.0.0.0:8051"
    assert s["security.bcrypt_rounds"] == 12
    assert s["security.session_idle_minutes"] == 30
    assert s.paths.users_db == tmp_path / "data" / "users.db"
    assert s.paths.audit_log == tmp_path / "logs" / "audit.jsonl"
    assert s.database_url == f"sqlite:///{tmp_path / 'data' / 'users.db'}"


def test_toml_then_environment_override(tmp_path):
    write_config(tmp_path, '[server]\nworkers = 3\nbind = "127.0.0.1:9000"\n')
    s = load_settings(tmp_path, env={"EMTP_SERVER_WORKERS": "6"})
    assert s["server.workers"] == 6 and s["server.bind"] == "127.0.0.1:9000"
    assert s.origin_of["server.workers"] == "la variable EMTP_SERVER_WORKERS"


@pytest.mark.parametrize("toml, key", [
    ('[server]\nworkers = "muchos"\n', "server.workers"),
    ('[server]\nbind = "sin-puerto"\n', "server.bind"),
    ('[security]\nbcrypt_rounds = 40\n', "security.bcrypt_rounds"),
    ('[data]\nsource = "excel"\n', "data.source"),
    ('[servidor]\nbind = "x"\n', "servidor.bind"),
    ('[database]\nurl = "mysql://x"\n', "database.url"),
])
def test_bad_setting_names_key_and_file(tmp_path, toml, key):
    write_config(tmp_path, toml)
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path, env={})
    msg = str(exc.value)
    assert key in msg and "visualizador-emtp.toml" in msg
    assert "\n" not in msg


def test_bad_environment_value_names_variable(tmp_path):
    with pytest.raises(ConfigError, match="EMTP_SECURITY_COOKIE_SECURE"):
        load_settings(tmp_path, env={"EMTP_SECURITY_COOKIE_SECURE": "quizás"})


def test_invalid_toml(tmp_path):
    write_config(tmp_path, "[server\nbind=")
    with pytest.raises(ConfigError, match="no es TOML válido"):
        load_settings(tmp_path, env={})


def test_every_setting_documented():
    from support import REPO
    doc = (REPO / "docs" / "CONFIGURACION.md").read_text(encoding="utf-8")
    missing = [s.name for s in SETTINGS if f"`{s.key}`" not in doc or s.env not in doc]
    assert not missing, f"sin documentar en docs/CONFIGURACION.md: {missing}"


def test_missing_secret_key(tmp_path):
    s = load_settings(tmp_path, env={})
    with pytest.raises(ConfigError, match="emtp-admin init"):
        s.secret_key()
