"""The canonical schema of processed EMTP enrollment (MINEDUC column names, compact types)."""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

SCHEMA = pa.schema([
    pa.field("AGNO", pa.int16(), nullable=False),
    pa.field("RBD", pa.int32(), nullable=False),
    pa.field("NOM_RBD", pa.string()),
    pa.field("COD_REG_RBD", pa.int8(), nullable=False),
    pa.field("COD_COM_RBD", pa.int32(), nullable=False),
    pa.field("NOM_COM_RBD", pa.string()),
    pa.field("COD_DEPE", pa.int8(), nullable=False),
    pa.field("COD_DEPE2", pa.int8(), nullable=False),
    pa.field("RURAL_RBD", pa.int8(), nullable=False),
    pa.field("COD_ENSE", pa.int16(), nullable=False),
    pa.field("COD_GRADO", pa.int8(), nullable=False),
    pa.field("COD_DES_CUR", pa.int8()),
    pa.field("MRUN", pa.int64(), nullable=False),
    pa.field("GEN_ALU", pa.int8(), nullable=False),
    pa.field("EDAD_ALU", pa.int8()),
    pa.field("COD_RAMA", pa.int16(), nullable=False),
    pa.field("COD_SEC", pa.int16(), nullable=False),
    pa.field("COD_ESPE", pa.int32(), nullable=False),
    pa.field("COD_MEN", pa.int32()),
])

COLUMNS: tuple[str, ...] = tuple(SCHEMA.names)
INT_COLUMNS: tuple[str, ...] = tuple(f.name for f in SCHEMA if pa.types.is_integer(f.type))
STRING_COLUMNS: tuple[str, ...] = tuple(f.name for f in SCHEMA if pa.types.is_string(f.type))
# Columns that must never be null (keys and every dimension of the cube).
REQUIRED: tuple[str, ...] = tuple(f.name for f in SCHEMA if not f.nullable)
# Optional in a source: filled with null (or 0 for COD_MEN / COD_DES_CUR) when absent.
OPTIONAL: tuple[str, ...] = ("NOM_RBD", "NOM_COM_RBD", "COD_DES_CUR", "EDAD_ALU", "COD_MEN")
# Plausible ranges (inclusive) checked by validation.
RANGES: dict[str, tuple[int, int]] = {
    "AGNO": (2004, 2100),
    "RBD": (1, 999_999),
    "MRUN": (1, 99_999_999_999),
    "EDAD_ALU": (10, 90),
}


def type_of(column: str) -> pa.DataType:
    return SCHEMA.field(column).type


def empty_table() -> pa.Table:
    return SCHEMA.empty_table()
