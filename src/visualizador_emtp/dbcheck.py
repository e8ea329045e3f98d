"""Health of users.db: integrity and migration revision (used by db check, doctor, /healthz)."""

from __future__ import annotations

import sqlite3

from visualizador_emtp import migrate


def sqlite_integrity(path, quick: bool = True) -> str:
    """'ok' or the first problem sqlite reports (opened read-only, never created)."""
    if not path.exists():
        return f"no existe el archivo {path}"
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    text = "; ".join(str(r[0]).replace("\n", " ") for r in rows[:3])
    if text == "ok":
        return "ok"
    more = f" (y {len(rows) - 3} problemas más)" if len(rows) > 3 else ""
    return (text[:300] + "…" if len(text) > 300 else text) + more


def check_database(inst) -> list[str]:
    problems = []
    if inst.settings.is_sqlite:
        result = sqlite_integrity(inst.paths.users_db)
        if result != "ok":
            return [f"users.db dañada o ilegible ({inst.paths.users_db}): {result}. "
                    "Ejecute 'emtp-admin db recover'."]
    try:
        cur = migrate.current_revision(inst.db.engine)
    except Exception as exc:
        return [f"No se pudo leer la base de datos: {exc}"]
    head = migrate.head_revision()
    if cur != head:
        problems.append(f"La base de datos está en la revisión {cur or 'vacía'} y se espera {head}: "
                        "ejecute 'emtp-admin db upgrade'.")
    return problems
