"""Docs kept true by tests: the architecture map names real modules and every package."""

from __future__ import annotations

import re

from support import REPO

ARCH = REPO / "docs" / "ARQUITECTURA.md"
PKG = REPO / "src" / "visualizador_emtp"


def test_every_module_named_in_the_architecture_exists():
    text = ARCH.read_text(encoding="utf-8")
    named = set(re.findall(r"`(src/visualizador_emtp/[\w/]+(?:\.py)?/?)`", text))
    assert len(named) > 20
    missing = [n for n in named if not (REPO / n).exists()]
    assert not missing, missing
    # short forms like `ops/restore.py` next to a full path
    for short in re.findall(r"`((?:audit|auth|charts|cli|data|ops|users|web)/[\w/]+\.py)`", text):
        assert (PKG / short).exists() or (PKG / "data" / short).exists(), short


def test_every_package_is_in_the_architecture():
    text = ARCH.read_text(encoding="utf-8")
    packages = [p.relative_to(PKG).as_posix() for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    missing = [p for p in packages if f"src/visualizador_emtp/{p}/" not in text and f"`{p}/" not in text]
    assert not missing, f"paquetes sin describir en docs/ARQUITECTURA.md: {missing}"


def test_readme_gives_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/demo.sh" in readme and "bash scripts/test.sh" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci
