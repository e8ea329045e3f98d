"""docs/MANUAL_MANTENIMIENTO.md documents every emtp-admin command and subcommand."""

from __future__ import annotations

import re
from pathlib import Path

import click

from visualizador_emtp.cli import cli

MANUAL = Path(__file__).resolve().parents[2] / "docs" / "MANUAL_MANTENIMIENTO.md"

# every task and error of the previous system's manual has its section
SEED_TOPICS = ("Verificaciones diarias", "Respaldo diario", "Archivo mensual", "Restauración",
               "Resetear contraseña", "comprometido", "inactivos", "Rotación de logs",
               "Actualización del sistema", "Error 1", "Error 2", "Error 3", "Error 4", "Error 5",
               "Emergencia 1", "Emergencia 2", "Emergencia 3", "Registro de mantenimientos")


def _commands(group: click.Group, prefix: str = "emtp-admin") -> list[str]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        full = f"{prefix} {name}"
        out.append(full)
        if isinstance(cmd, click.Group):
            out += _commands(cmd, full)
    return out


def test_every_command_is_documented():
    text = MANUAL.read_text(encoding="utf-8")
    commands = _commands(cli)
    assert "emtp-admin backup list" in commands and "emtp-admin db recover" in commands
    missing = [c for c in commands if not re.search(re.escape(c) + r"(?![\w-])", text)]
    assert not missing, f"comandos sin documentar en {MANUAL.name}: {missing}"


def test_seed_manual_topics_are_mapped():
    text = MANUAL.read_text(encoding="utf-8")
    missing = [t for t in SEED_TOPICS if t.lower() not in text.lower()]
    assert not missing, missing
