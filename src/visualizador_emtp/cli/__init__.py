"""emtp-admin: a thin command-line layer over the package's functions.

Each command group lives in its own module with a ``register(cli)`` function;
``COMMAND_MODULES`` lists them. Output and help are in Spanish.
"""

from __future__ import annotations

import importlib
import sys

import click

from visualizador_emtp import __version__
from visualizador_emtp.cli import i18n
from visualizador_emtp.cli.common import CONTEXT_SETTINGS, run_cli

i18n.install()

COMMAND_MODULES = (
    "visualizador_emtp.cli.core",      # init, serve
    "visualizador_emtp.cli.db",        # db upgrade|current|check|recover
    "visualizador_emtp.cli.users",     # users create|list|set-password|deactivate|activate|inactive
    "visualizador_emtp.cli.audit",     # audit verify|tail
    "visualizador_emtp.cli.data",      # demo-data, refresh, import-rds, test-connections
    "visualizador_emtp.cli.ops",       # backup, restore, archive, doctor, cleanup, maintenance
)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", "-V", prog_name="emtp-admin", message="%(prog)s %(version)s")
@click.option("--home", envvar="EMTP_HOME", type=click.Path(file_okay=False),
              help="Carpeta de la instancia (por defecto $EMTP_HOME o /opt/apps/visualizador-emtp).")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Administración de Visualizador EMTP (usuarios, datos, respaldos, diagnóstico)."""
    ctx.obj = {"home": home}


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(cli)


def main() -> None:
    sys.exit(run_cli(cli))
