"""A tiny writer of real R serialization (XDR, format 3, gzip) for data.frame test fixtures.

Columns: ("double", [float|None]), ("int", [int|None]), ("str", [str|None]), ("factor", [str|None]).
"""

from __future__ import annotations

import gzip
import struct

NA_INT = -(2 ** 31)
NA_REAL = struct.unpack(">d", bytes.fromhex("7ff00000000007a2"))[0]
OBJ, ATTR, TAG = 1 << 8, 1 << 9, 1 << 10


def _i(v: int) -> bytes:
    return struct.pack(">i", v)


def _charsxp(s: str | None) -> bytes:
    if s is None:
        return _i(9) + _i(-1)
    b = s.encode("utf-8")
    level = 64 if s.isascii() else 8  # ASCII or UTF-8 mark
    return _i(9 | (level << 12)) + _i(len(b)) + b


def _sym(name: str) -> bytes:
    return _i(1) + _charsxp(name)


def _strsxp(values) -> bytes:
    return _i(16) + _i(len(values)) + b"".join(_charsxp(v) for v in values)


def _attrs(pairs: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for name, value in pairs:
        out += _i(2 | TAG) + _sym(name) + value
    return out + _i(254)


def _column(kind: str, values) -> bytes:
    if kind == "double":
        body = b"".join(struct.pack(">d", NA_REAL if v is None else float(v)) for v in values)
        return _i(14) + _i(len(values)) + body
    if kind == "int":
        return _i(13) + _i(len(values)) + b"".join(_i(NA_INT if v is None else int(v)) for v in values)
    if kind == "str":
        return _strsxp(values)
    if kind == "factor":
        levels = sorted({v for v in values if v is not None})
        codes = [NA_INT if v is None else levels.index(v) + 1 for v in values]
        return (_i(13 | OBJ | ATTR) + _i(len(values)) + b"".join(_i(c) for c in codes)
                + _attrs([("levels", _strsxp(levels)), ("class", _strsxp(["factor"]))]))
    raise ValueError(kind)


def dataframe_bytes(columns: dict[str, tuple[str, list]]) -> bytes:
    n = len(next(iter(columns.values()))[1])
    body = _i(19 | OBJ | ATTR) + _i(len(columns)) + b"".join(_column(k, v) for k, v in columns.values())
    body += _attrs([
        ("names", _strsxp(list(columns))),
        ("class", _strsxp(["data.frame"])),
        ("row.names", _i(13) + _i(2) + _i(NA_INT) + _i(-n)),
    ])
    header = b"X\n" + _i(3) + _i(0x040301) + _i(0x030500) + _i(5) + b"UTF-8"
    return header + body


def write_rds(path, columns: dict[str, tuple[str, list]], compress: bool = True) -> None:
    data = dataframe_bytes(columns)
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if compress else data)
