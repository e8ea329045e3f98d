"""Spanish for click's own strings (usage, headings, errors), without .mo files.

click calls ``gettext``/``ngettext`` imported into each of its modules as ``_`` and
``ngettext``; we rebind those names to look up this table first.
"""

from __future__ import annotations

import gettext as _gettext

SPANISH = {
    "Usage:": "Uso:",
    "Options": "Opciones",
    "Commands": "Órdenes",
    "Positional arguments": "Argumentos",
    "Show this message and exit.": "Muestra esta ayuda y termina.",
    "Show the version and exit.": "Muestra la versión y termina.",
    "Error: {message}": "Error: {message}",
    "Try '{command} {option}' for help.": "Pruebe '{command} {option}' para ver la ayuda.",
    "No such command {name!r}.": "No existe la orden {name!r}.",
    "No such option {name!r}.": "No existe la opción {name!r}.",
    "Missing command.": "Falta la orden.",
    "Missing argument": "Falta el argumento",
    "Missing option": "Falta la opción",
    "Missing parameter": "Falta el parámetro",
    "Missing parameter: {param_name}": "Falta el parámetro: {param_name}",
    "Missing {param_type}": "Falta {param_type}",
    "Invalid value for {param_hint}: {message}": "Valor inválido para {param_hint}: {message}",
    "Invalid value: {message}": "Valor inválido: {message}",
    "Aborted!": "Cancelado.",
    "Repeat for confirmation": "Repita para confirmar",
    "Error: The two entered values do not match.": "Error: los dos valores no coinciden.",
    "Error: invalid input": "Error: entrada inválida",
    "Do you want to continue?": "¿Desea continuar?",
    "Confirm the action without prompting.": "Confirma la acción sin preguntar.",
    "default: {default}": "por defecto: {default}",
    "env var: {var}": "variable de entorno: {var}",
    "{value!r} is not a valid {number_type}.": "{value!r} no es un {number_type} válido.",
    "{value} is not in the range {range}.": "{value} no está en el rango {range}.",
    "{value!r} is not {choice}.": "{value!r} no es {choice}.",
    "{value!r} is not one of {choices}.": "{value!r} no es una de estas opciones: {choices}.",
    "{name} {filename!r} does not exist.": "{name} {filename!r} no existe.",
    "{name} {filename!r} is a directory.": "{name} {filename!r} es una carpeta.",
    "{name} {filename!r} is a file.": "{name} {filename!r} es un archivo.",
    "{name} {filename!r} is not readable.": "{name} {filename!r} no se puede leer.",
    "{name} {filename!r} is not writable.": "{name} {filename!r} no se puede escribir.",
    "Could not open file {filename!r}: {message}": "No se pudo abrir {filename!r}: {message}",
    "file": "archivo",
    "directory": "carpeta",
    "path": "ruta",
    "integer": "número entero",
    "Got unexpected extra argument ({args})": "Argumento adicional inesperado ({args})",
    "Got unexpected extra arguments ({args})": "Argumentos adicionales inesperados ({args})",
    "Did you mean {possibility}?": "¿Quiso decir {possibility}?",
    "(Did you mean one of: {possibilities}?)": "(¿Quiso decir alguna de: {possibilities}?)",
}


def _gettext_es(message: str) -> str:
    return SPANISH.get(message, _gettext.gettext(message))


def _ngettext_es(singular: str, plural: str, n: int) -> str:
    return SPANISH.get(singular if n == 1 else plural, _gettext.ngettext(singular, plural, n))


def install() -> None:
    import click.core
    import click.decorators
    import click.exceptions
    import click.formatting
    import click.termui
    import click.types

    if not getattr(click.core.Command.__init__, "_emtp_es", False):
        command_init, group_init = click.core.Command.__init__, click.core.Group.__init__

        def command_init_es(self, *a, **kw):
            kw.setdefault("options_metavar", "[OPCIONES]")
            command_init(self, *a, **kw)

        def group_init_es(self, *a, **kw):
            kw.setdefault("subcommand_metavar", "ORDEN [ARGUMENTOS]...")
            group_init(self, *a, **kw)

        command_init_es._emtp_es = True
        click.core.Command.__init__ = command_init_es
        click.core.Group.__init__ = group_init_es

    for module in (click.core, click.decorators, click.exceptions, click.formatting, click.termui, click.types):
        if hasattr(module, "_"):
            module._ = _gettext_es
        if hasattr(module, "ngettext"):
            module.ngettext = _ngettext_es
