"""Browser fixtures: Debian's chromium through Playwright against the shared real gunicorn."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboards"))
import emtp_env  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DOCS_IMG = REPO / "docs" / "img"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def dash_env():
    env = emtp_env.acquire()
    yield env
    emtp_env.release()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


class Console:
    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))


def _logged_in(browser, dash_env, username: str):
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True, locale="es-CL")
    pg = ctx.new_page()
    pg.console = Console(pg)
    pg.goto(dash_env.base_url + "/login")
    pg.fill("input[name=username]", username)
    pg.fill("input[name=password]", emtp_env.PASSWORD)
    pg.click("button[type=submit]")
    pg.wait_for_url("**/resumen")
    return ctx, pg


@pytest.fixture
def page(browser, dash_env):
    """A tab logged in as the analyst."""
    ctx, pg = _logged_in(browser, dash_env, emtp_env.USER)
    yield pg
    ctx.close()


@pytest.fixture
def admin_page(browser, dash_env):
    """A tab logged in as the administrator."""
    ctx, pg = _logged_in(browser, dash_env, emtp_env.ADMIN_USER)
    yield pg
    ctx.close()


# The manuals' pictures are refreshed only on request (EMTP_UPDATE_DOC_IMAGES=1), so an ordinary test run
# leaves the work tree clean; every run keeps its screenshots in test-artifacts/.
UPDATE_DOC_IMAGES = os.environ.get("EMTP_UPDATE_DOC_IMAGES") == "1"


@pytest.fixture(scope="session")
def shots(artifacts_dir):
    DOCS_IMG.mkdir(parents=True, exist_ok=True)

    def save(pg, name: str, full_page: bool = True, docs: bool = True):
        pg.screenshot(path=str(artifacts_dir / f"{name}.png"), full_page=full_page)
        if docs and UPDATE_DOC_IMAGES:
            pg.screenshot(path=str(DOCS_IMG / f"{name}.png"), full_page=full_page)

    return save
