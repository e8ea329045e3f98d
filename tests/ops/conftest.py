"""Fixtures for the ops tests (helpers live in ops_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from visualizador_emtp.instance import Instance


@pytest.fixture
def dest(instance: Instance) -> Path:
    """The backup folder configured by the shared ``home`` fixture."""
    return instance.settings.home_path("backup.dest")
