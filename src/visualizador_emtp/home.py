"""Create or complete an instance home (emtp-admin init): folders, config, secret key, database."""

from __future__ import annotations

import os
import secrets

from visualizador_emtp import migrate
from visualizador_emtp.config import default_config_text


def _write_private(path, data: bytes, mode: int) -> None:
    """Write atomically with the final mode from the first byte (no window with looser modes)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _prepare_chart_bundle(folder) -> str:
    """The offline vega bundle, so the first dashboard visit does not wait for it (~1 s)."""
    try:
        from visualizador_emtp.charts import bundle
        plain, _ = bundle.ensure(folder)
        return f"Paquete de gráficos listo: {plain}"
    except Exception as exc:  # the app also generates it lazily: never fail init for it
        return f"Aviso: no se pudo preparar el paquete de gráficos ahora ({exc}); se generará al primer uso."


def init_home(inst, rotate_secret: bool = False, prepare_assets: bool = True) -> list[str]:
    p = inst.paths
    report = []
    for d, mode in ((p.home, 0o755), (p.config_dir, 0o750), (p.data_dir, 0o750), (p.processed_dir, 0o750),
                    (p.logs_dir, 0o750), (p.run_dir, 0o750)):
        if not d.exists():
            d.mkdir(parents=True, mode=mode)
            report.append(f"Creada {d}")
    if not p.config_file.exists():
        _write_private(p.config_file, default_config_text().encode("utf-8"), 0o640)
        report.append(f"Creado {p.config_file} (todas las claves comentadas con su valor por defecto)")
    if rotate_secret or not p.secret_key_file.exists():
        _write_private(p.secret_key_file, secrets.token_hex(32).encode("ascii") + b"\n", 0o600)
        report.append(("Rotada" if rotate_secret else "Creada") + f" la clave secreta {p.secret_key_file} (0600)")
    for f in (p.app_log, p.audit_log):
        if not f.exists():
            fd = os.open(f, os.O_WRONLY | os.O_CREAT, 0o640)
            os.close(fd)
    if prepare_assets:
        report.append(_prepare_chart_bundle(p.data_dir / "cache" / "vega"))
    before = migrate.current_revision(inst.db.engine)
    migrate.upgrade(inst.db.engine, inst.settings.database_url)
    after = migrate.current_revision(inst.db.engine)
    if before != after:
        report.append(f"Base de datos de usuarios migrada a la revisión {after}")
    return report
