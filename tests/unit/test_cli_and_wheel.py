"""emtp-admin --help for every command; the wheel carries templates, static files and migrations."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import click
import pytest
from click.testing import CliRunner

from support import EMTP_ADMIN, REPO
from visualizador_emtp.cli import cli


def all_commands(group: click.Group, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        path = prefix + (name,)
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, path)


def test_every_command_has_spanish_help():
    runner = CliRunner()
    commands = list(all_commands(cli))
    assert len(commands) >= 12
    for path, cmd in commands:
        r = runner.invoke(cli, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        assert cmd.help or cmd.short_help, f"{' '.join(path)} sin texto de ayuda"
        assert "Traceback" not in r.output
        assert "Uso:" in r.output and "Usage:" not in r.output and "Show this message" not in r.output


def test_console_script_help_and_version():
    r = subprocess.run([EMTP_ADMIN, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "Administración de Visualizador EMTP" in r.stdout
    r = subprocess.run([EMTP_ADMIN, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("emtp-admin ")


def test_unknown_command_is_an_error(tmp_path):
    r = subprocess.run([EMTP_ADMIN, "--home", str(tmp_path), "no-existe"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                   check=True, capture_output=True, text=True, timeout=600)
    wheels = list(out.glob("visualizador_emtp-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    required = [
        "visualizador_emtp/app.py",
        "visualizador_emtp/web/templates/base.html",
        "visualizador_emtp/web/templates/login.html",
        "visualizador_emtp/web/static/css/app.css",
        "visualizador_emtp/web/static/vendor/htmx-2.0.11.min.js",
        "visualizador_emtp/web/static/vendor/htmx-LICENSE.txt",
        "visualizador_emtp/migrations/env.py",
        "visualizador_emtp/migrations/script.py.mako",
        "visualizador_emtp/migrations/versions/0001_initial.py",
        "visualizador_emtp/migrations/versions/0002_activity_indexes.py",
    ]
    missing = [n for n in required if n not in names]
    assert not missing, missing
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "emtp-admin = visualizador_emtp.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)


def test_wheel_installs_and_migrates_without_checkout(wheel, tmp_path):
    """A server with only the wheel: emtp-admin init + db upgrade work (migrations inside the package)."""

    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([venv / "bin" / "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    # dependencies come from the test venv's site-packages, but not its editable checkout (.pth files
    # of that directory are not processed from here)
    new_site = next((venv / "lib").glob("python3*/site-packages"))
    (new_site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    home = tmp_path / "home"
    env = {"EMTP_HOME": str(home), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([venv / "bin" / "emtp-admin", "init"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([venv / "bin" / "python", "-c",
                        "import visualizador_emtp.migrate as m; print(m.migrations_dir())"],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert str(venv) in r.stdout, r.stdout + r.stderr
    r = subprocess.run([venv / "bin" / "emtp-admin", "db", "current"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert "Revisión actual: 0002" in r.stdout, r.stdout + r.stderr
