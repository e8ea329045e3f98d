"""All ORM models, imported in one place for Alembic and for create-time checks."""

from visualizador_emtp.auth.models import LoginAttempt, UserSession  # noqa: F401
from visualizador_emtp.db import Base  # noqa: F401
from visualizador_emtp.users.models import User  # noqa: F401
