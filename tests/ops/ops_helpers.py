"""Helpers for the ops tests: tiny published data, page-level SQLite damage."""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def publish_tiny_data(processed: Path, refreshed_at: datetime | None = None) -> Path:
    """A small but complete published data version, written through the data layer's own
    cube builder and store (what a refresh produces)."""
    from visualizador_emtp.data import store
    from visualizador_emtp.data.cube import build_cube
    from visualizador_emtp.data.schema import SCHEMA

    refreshed_at = refreshed_at or datetime.now(timezone.utc)
    n = 40
    cols = {
        "AGNO": [2024 + (i % 2) for i in range(n)], "RBD": [100 + (i % 4) for i in range(n)],
        "NOM_RBD": [f"Liceo {100 + (i % 4)}" for i in range(n)], "COD_REG_RBD": [13] * n,
        "COD_COM_RBD": [13101] * n, "NOM_COM_RBD": ["SANTIAGO"] * n, "COD_DEPE": [2] * n,
        "COD_DEPE2": [1] * n, "RURAL_RBD": [0] * n, "COD_ENSE": [410] * n, "COD_GRADO": [3 + (i % 2) for i in range(n)],
        "COD_DES_CUR": [1] * n, "MRUN": list(range(1, n + 1)), "GEN_ALU": [1 + (i % 2) for i in range(n)],
        "EDAD_ALU": [17] * n, "COD_RAMA": [400] * n, "COD_SEC": [410] * n, "COD_ESPE": [41001] * n,
        "COD_MEN": [0] * n,
    }
    table = pa.table({f.name: pa.array(cols[f.name], f.type) for f in SCHEMA}, schema=SCHEMA)
    tables = build_cube(table)
    processed.mkdir(parents=True, exist_ok=True)
    vid = store.new_version_id(refreshed_at)
    vdir = store.versions_dir(processed) / vid
    vdir.mkdir(parents=True)
    files = {}
    for name, t in tables.items():
        f = vdir / f"{name}.parquet"
        pq.write_table(t, f)
        files[f.name] = {"sha256": hashlib.sha256(f.read_bytes()).hexdigest(), "rows": len(t)}
    manifest = {"files": files, "source": "test", "rows": n,
                "refreshed_at": refreshed_at.isoformat(timespec="seconds").replace("+00:00", "Z")}
    store.write_json_durable(vdir / store.MANIFEST, manifest)
    store.point_current(processed, vid)
    try:
        from visualizador_emtp.data.cube import clear_cache
        clear_cache()
    except ImportError:  # pragma: no cover
        pass
    return vdir


# --- SQLite page-level damage --------------------------------------------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(9):
        b = buf[pos + i]
        if i == 8:
            return (value << 8) | b, pos + 9
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, pos + i + 1
    raise AssertionError("unreachable")


def table_leaf_pages(db: Path, table: str) -> list[int]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
                           (table,)).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def rowids_on_page(db: Path, pageno: int) -> list[int]:
    """Rowids stored in one table-leaf page, read straight from the file format."""
    data = db.read_bytes()
    page_size = struct.unpack(">H", data[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    start = (pageno - 1) * page_size
    page = data[start:start + page_size]
    hdr = 100 if pageno == 1 else 0
    assert page[hdr] == 0x0D, "not a table leaf page"
    cells = struct.unpack(">H", page[hdr + 3:hdr + 5])[0]
    out = []
    for i in range(cells):
        ptr = struct.unpack(">H", page[hdr + 8 + 2 * i:hdr + 10 + 2 * i])[0]
        _, pos = _varint(page, ptr)
        rowid, _ = _varint(page, pos)
        out.append(rowid)
    return out


def overwrite_page(db: Path, pageno: int, fill: bytes = b"\xa5") -> None:
    page_size = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as f:
        f.seek((pageno - 1) * page_size)
        f.write(fill * page_size)


def checkpoint(db: Path) -> None:
    """Fold the WAL into the main file so page-level edits hit real content."""
    import gc
    gc.collect()  # engines of Instances that went out of scope release their connections
    con = sqlite3.connect(db, timeout=10)
    try:
        busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "another connection kept the WAL busy"
    finally:
        con.close()


def all_rows(db: Path, table: str) -> dict[int, tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {r[0]: tuple(r[1:]) for r in con.execute(f"SELECT rowid, * FROM {table}")}
    finally:
        con.close()
