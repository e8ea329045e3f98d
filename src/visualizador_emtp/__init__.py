"""Visualizador EMTP: internal dashboard of Chile's EMTP enrollment."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("visualizador-emtp")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"
