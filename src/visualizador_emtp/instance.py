"""One instance home: settings + users database + audit log, shared by web and CLI."""

from __future__ import annotations

import os
from pathlib import Path

from visualizador_emtp.audit.chain import AuditLog
from visualizador_emtp.config import Settings, load_settings
from visualizador_emtp.db import Database


class Instance:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.paths = settings.paths
        self.db = Database(settings.database_url, settings["database.busy_timeout_ms"])
        self.audit = AuditLog(self.paths.audit_log, self.paths.run_dir)

    @classmethod
    def load(cls, home: str | os.PathLike | None = None, **overrides) -> "Instance":
        return cls(load_settings(home, overrides=overrides or None))

    @property
    def home(self) -> Path:
        return self.settings.home
