"""Fixtures for the audit tests: the Flask app of the test home and a logged-in admin client."""

from __future__ import annotations

import pytest

from audit_helpers import login
from visualizador_emtp.app import create_app


@pytest.fixture
def app(home, instance):
    application = create_app(home=str(home))
    application.config["TESTING"] = True
    return application


@pytest.fixture
def admin_client(app, make_user):
    make_user("jefa", role="admin")
    client = app.test_client()
    login(client, "jefa")
    return client
