"""Helpers shared by every emtp-admin command: loading the instance, Spanish errors, output."""

from __future__ import annotations

import logging

import click

from visualizador_emtp.config import ConfigError
from visualizador_emtp.instance import Instance
from visualizador_emtp.logging_setup import setup_logging

# Never print a traceback on the terminal when no log handler is configured yet.
logging.lastResort = None
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class CliError(click.ClickException):
    """A failure explained in one Spanish line; exit code 1 unless given."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def get_instance(ctx: click.Context) -> Instance:
    """The instance of --home / $EMTP_HOME; bad settings end with one Spanish line.

    Unexpected errors of CLI commands are logged to the instance's app.log.
    """
    root = ctx.find_root()
    if "instance" not in root.obj:
        try:
            inst = Instance.load(root.obj.get("home"))
        except ConfigError as exc:
            raise CliError(str(exc), 2) from None
        setup_logging(inst.paths.app_log, inst.settings["logging.level"])
        root.obj["instance"] = inst
    return root.obj["instance"]


def operator_name(explicit: str | None = None) -> str:
    """Who runs the command, for the audit and MANTENIMIENTO.log: --operator, the user behind sudo,
    the login name, or (cron and timers may set neither) the account of the process."""
    import os
    import pwd

    named = explicit or os.environ.get("SUDO_USER") or os.environ.get("USER") or os.environ.get("LOGNAME")
    if named:
        return named
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry (some containers)
        return f"uid {os.geteuid()}"


def run_cli(group: click.Group) -> int:
    """Run the group; never show a traceback for expected errors."""
    try:
        group.main(standalone_mode=False, prog_name="emtp-admin")
        return 0
    except click.exceptions.Abort:
        click.echo("Cancelado.", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("Interrumpido.", err=True)
        return 130
    except Exception as exc:  # last resort: one line for the operator, details in app.log
        logging.getLogger("visualizador_emtp.cli").exception("emtp-admin falló")
        click.echo(f"Error inesperado: {exc.__class__.__name__}: {exc}. Revise logs/app.log.", err=True)
        return 1
