"""emtp-admin users create|list|set-password|deactivate|activate|inactive."""

from __future__ import annotations

import sys

import click

from visualizador_emtp.cli.common import CliError, get_instance, operator_name
from visualizador_emtp.users import service
from visualizador_emtp.users.service import UserError


def register(cli: click.Group) -> None:
    cli.add_command(users)


@click.group()
def users() -> None:
    """Cuentas de usuario: crear, listar, cambiar contraseña, activar y desactivar."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CliError("No se recibió contraseña por la entrada estándar.")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CliError("No hay terminal para pedir la contraseña: use --password-stdin.")
    first = click.prompt("Contraseña", hide_input=True, show_default=False)
    second = click.prompt("Repita la contraseña", hide_input=True, show_default=False)
    if first != second:
        raise CliError("Las contraseñas no coinciden.")
    return first


def _audit(inst, event: str, target: str, detail=None, success: bool = True) -> None:
    inst.audit.append(event, actor=f"cli:{operator_name()}", target=target, success=success,
                      ip="local", user_agent="emtp-admin", detail=detail)


@users.command("create")
@click.argument("username", metavar="USUARIO")
@click.option("--role", type=click.Choice(["admin", "analista"]), default="analista", show_default=True,
              help="Perfil del usuario.")
@click.option("--full-name", default="", help="Nombre completo.")
@click.option("--email", default="", help="Correo electrónico.")
@click.option("--password-stdin", is_flag=True, help="Lee la contraseña de la entrada estándar (automatización).")
@click.pass_context
def create(ctx, username, role, full_name, email, password_stdin):
    """Crea un usuario. La contraseña se pide dos veces (o se lee con --password-stdin)."""
    inst = get_instance(ctx)
    password = _read_password(password_stdin)
    try:
        u = service.create_user(inst.db, username, password, role, full_name, email,
                                bcrypt_rounds=inst.settings["security.bcrypt_rounds"])
    except UserError as exc:
        raise CliError(str(exc)) from None
    _audit(inst, "user_create", u.username, {"role": u.role})
    click.echo(f"Usuario '{u.username}' creado con perfil {u.role}.")


@users.command("list")
@click.option("--all", "show_all", is_flag=True, help="Incluye usuarios desactivados.")
@click.pass_context
def list_(ctx, show_all):
    """Lista los usuarios con su perfil y último acceso."""
    inst = get_instance(ctx)
    rows = service.list_users(inst.db, active=None if show_all else True)
    if not rows:
        click.echo("No hay usuarios.")
        return
    click.echo(f"{'USUARIO':<24} {'PERFIL':<9} {'ESTADO':<10} ÚLTIMO ACCESO")
    for u in rows:
        last = u.last_login.strftime("%Y-%m-%d %H:%M UTC") if u.last_login else "nunca"
        click.echo(f"{u.username:<24} {u.role:<9} {'activo' if u.is_active else 'inactivo':<10} {last}")


@users.command("set-password")
@click.argument("username", metavar="USUARIO")
@click.option("--password-stdin", is_flag=True, help="Lee la contraseña de la entrada estándar.")
@click.pass_context
def set_password(ctx, username, password_stdin):
    """Cambia la contraseña de un usuario (cierra sus sesiones abiertas)."""
    inst = get_instance(ctx)
    try:
        u = service.get_user(inst.db, username)
        password = _read_password(password_stdin)
        service.update_user(inst.db, u.id, password=password, bcrypt_rounds=inst.settings["security.bcrypt_rounds"])
    except UserError as exc:
        raise CliError(str(exc)) from None
    _audit(inst, "user_password_change", u.username)
    click.echo(f"Contraseña de '{u.username}' actualizada.")


def _set_active(ctx, username: str, active: bool) -> None:
    inst = get_instance(ctx)
    try:
        u = service.get_user(inst.db, username)
        u, changed = service.set_active(inst.db, u.id, active)
    except UserError as exc:
        raise CliError(str(exc)) from None
    state = "activo" if active else "desactivado"
    if not changed:
        click.echo(f"'{u.username}' ya estaba {state}.")
        return
    _audit(inst, "user_activate" if active else "user_deactivate", u.username)
    click.echo(f"Usuario '{u.username}' {'reactivado' if active else 'desactivado'}.")


@users.command()
@click.argument("username", metavar="USUARIO")
@click.pass_context
def deactivate(ctx, username):
    """Desactiva un usuario: no podrá ingresar y sus sesiones se cierran."""
    _set_active(ctx, username, False)


@users.command()
@click.argument("username", metavar="USUARIO")
@click.pass_context
def activate(ctx, username):
    """Reactiva un usuario desactivado."""
    _set_active(ctx, username, True)


@users.command()
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="Días sin ingresar para considerarlo inactivo.")
@click.option("--deactivate", "do_deactivate", is_flag=True, help="Desactiva los usuarios listados.")
@click.pass_context
def inactive(ctx, days, do_deactivate):
    """Usuarios activos sin ingresar en N días (revisión mensual)."""
    inst = get_instance(ctx)
    rows = service.inactive_users(inst.db, days)
    if not rows:
        click.echo(f"No hay usuarios activos sin ingresar en {days} días.")
        return
    for u in rows:
        last = u.last_login.strftime("%Y-%m-%d") if u.last_login else "nunca"
        click.echo(f"{u.username:<24} {u.role:<9} último acceso: {last}")
    if do_deactivate:
        done, skipped = 0, []
        for u in rows:
            try:
                _, changed = service.set_active(inst.db, u.id, False)
            except UserError as exc:
                skipped.append(f"{u.username} ({exc})")
                continue
            if changed:
                done += 1
                _audit(inst, "user_deactivate", u.username, {"reason": f"inactivo {days} días"})
        click.echo(f"Desactivados: {done}.")
        for s in skipped:
            click.echo(f"No desactivado: {s}")
    else:
        click.echo(f"{len(rows)} usuario(s). Use --deactivate para desactivarlos.")
