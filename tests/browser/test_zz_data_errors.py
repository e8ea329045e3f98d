"""When the published data disappears or a file is corrupted, the page says so (plain Spanish, what to
do) instead of spinning. Runs last: it temporarily breaks the shared instance and restores it."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from visualizador_emtp.data import store

pytestmark = pytest.mark.browser


def _wait_reload():
    time.sleep(1.3)  # the web workers check the "current" pointer at most once per second


def test_emptied_data_folder_shows_the_message(page, dash_env, shots):
    processed = dash_env.processed
    hidden = processed.parent / "processed-hidden"
    os.rename(processed, hidden)
    processed.mkdir()
    try:
        _wait_reload()
        page.goto(dash_env.base_url + "/resumen")
        alert = page.wait_for_selector("#error-datos", timeout=5000)
        text = alert.inner_text()
        assert "Los datos no están disponibles" in text and "emtp-admin refresh" in text
        assert page.eval_on_selector_all(".spinner:visible", "e => e.length") == 0
        shots(page, "error_sin_datos", full_page=False)
    finally:
        shutil.rmtree(processed)
        os.rename(hidden, processed)
    _wait_reload()
    page.goto(dash_env.base_url + "/resumen")
    page.wait_for_selector(".vega-chart[data-rendered] svg")


def test_corrupted_file_shows_the_message_during_a_filter_change(page, dash_env):
    processed = dash_env.processed
    good = store.current_target(processed)
    page.goto(dash_env.base_url + "/territorio")
    page.wait_for_selector(".vega-chart[data-rendered] svg")
    bad = "99999999T000000000Z-corrupt"
    src, dst = store.versions_dir(processed) / good, store.versions_dir(processed) / bad
    shutil.copytree(src, dst)
    with open(dst / "cube_region.parquet", "r+b") as f:
        f.seek(100)
        f.write(b"\x00" * 64)
    store.point_current(processed, bad)
    try:
        _wait_reload()
        page.select_option("#f-region", "5")  # an HTMX fragment request
        alert = page.wait_for_selector("#error-datos", timeout=5000)
        text = alert.inner_text()
        assert "no se pueden leer" in text and "dañado" in text and "emtp-admin refresh" in text
    finally:
        store.point_current(processed, good)
        shutil.rmtree(dst)
    _wait_reload()
    page.goto(dash_env.base_url + "/territorio?region=5")
    page.wait_for_selector(".vega-chart[data-rendered] svg")
