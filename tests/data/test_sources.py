"""Each reader on real files generated here: CSV (UTF-8 and latin-1), .rds, parquet."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from visualizador_emtp.data.sources.csv import CsvSource, detect_encoding

from .conftest import current_version, demo_table, small_table, raw_mineduc, write_csv
from .rds_writer import write_rds


def _published_rows(home):
    m = json.loads((home / "data/processed/current/manifest.json").read_text())
    return m["rows"], m


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_csv_reader_filters_emtp_and_detects_encoding(tmp_path, home, run_cli, encoding):
    t = demo_table((2025,)).slice(0, 3000)
    t = t.set_column(t.schema.get_field_index("NOM_COM_RBD"), "NOM_COM_RBD",
                     pa.array(["ÑUÑOA"] * len(t)))
    t = t.set_column(t.schema.get_field_index("COD_COM_RBD"), "COD_COM_RBD", pa.array([13120] * len(t), pa.int32()))
    t = t.set_column(t.schema.get_field_index("COD_REG_RBD"), "COD_REG_RBD", pa.array([13] * len(t), pa.int8()))
    rows = raw_mineduc(t)
    assert len(rows) == 3000 + 400 * 5
    path = write_csv(tmp_path / f"20250430_Matrícula_unica_2025_WEB_{encoding}.CSV", rows, encoding)
    assert detect_encoding(path) == encoding
    r = run_cli("refresh", "--source", "csv", "--path", str(path))
    assert r.returncode == 0, r.stderr
    n, m = _published_rows(home)
    assert n == 3000  # only EMTP rows of working schools; H-C, 1° medio, artistic, básica and recess excluded
    assert m["source"]["kind"] == "csv"
    got = pq.read_table(home / "data/processed/current/matricula_2025.parquet")
    assert set(got["NOM_COM_RBD"].to_pylist()) == {"ÑUÑOA"}
    assert sorted(got["MRUN"].to_pylist()) == sorted(t["MRUN"].to_pylist())


def test_csv_streams_in_blocks(tmp_path, monkeypatch):
    from visualizador_emtp.data.sources import csv as csvmod
    monkeypatch.setattr(csvmod, "BLOCK_SIZE", 64 << 10)
    rows = raw_mineduc(demo_table((2025,)).slice(0, 5000), extra_levels=False)
    path = write_csv(tmp_path / "m.csv", rows)
    batches = list(CsvSource(path).batches())
    assert len(batches) > 3
    assert sum(len(t) for t, _ in batches) == 5000
    assert batches[1][1][0] == len(batches[0][0]) + 1  # row numbers continue across blocks


def test_csv_text_in_number_column_reported_nothing_published(tmp_path, home, run_cli, small_parquet):
    assert run_cli("refresh", "--source", "parquet", "--path", str(small_parquet)).returncode == 0
    before = current_version(home)
    rows = raw_mineduc(demo_table((2025,)).slice(0, 200), extra_levels=False)
    rows[9]["EDAD_ALU"] = "diecisiete"
    rows[20]["COD_ESPE"] = "99999"
    rows[30]["EDAD_ALU"] = "-3"
    path = write_csv(tmp_path / "bad.csv", rows)
    r = run_cli("refresh", "--source", "csv", "--path", str(path))
    assert r.returncode == 4
    assert "fila 10, columna EDAD_ALU, valor «diecisiete»" in r.stderr
    assert "fila 21, columna COD_ESPE, valor «99999»: código desconocido" in r.stderr
    assert "fila 31, columna EDAD_ALU, valor «-3»" in r.stderr
    assert "Traceback" not in r.stderr
    assert current_version(home) == before
    assert not [p for p in (home / "data/processed").iterdir() if p.name.startswith(".staging")]


def test_parquet_reader_and_corrupt_files(tmp_path, home, run_cli, small_parquet):
    r = run_cli("refresh", "--source", "parquet", "--path", str(small_parquet))
    assert r.returncode == 0, r.stderr
    assert _published_rows(home)[0] == len(small_table())
    before = current_version(home)
    data = small_parquet.read_bytes()
    trunc = tmp_path / "truncado.parquet"
    trunc.write_bytes(data[: len(data) // 2])
    r = run_cli("refresh", "--source", "parquet", "--path", str(trunc))
    assert r.returncode == 6
    assert "truncado.parquet" in r.stderr and "no es un parquet válido" in r.stderr
    corrupt = tmp_path / "corrupto.parquet"
    b = bytearray(data)
    mid = len(b) // 3
    b[mid:mid + 4096] = bytes(4096)
    corrupt.write_bytes(bytes(b))
    r = run_cli("refresh", "--source", "parquet", "--path", str(corrupt))
    assert r.returncode in (4, 6)
    assert "Traceback" not in r.stderr and r.stderr.startswith("Error")
    assert current_version(home) == before


def _r_columns(t: pa.Table, extra: bool = True) -> dict:
    """Like an R pipeline extract: lowercase names, doubles for codes, strings for RBD/comuna, NA."""
    cols = {}
    for name in t.column_names:
        vals = t[name].to_pylist()
        if name in ("RBD", "COD_COM_RBD"):
            cols[name.lower()] = ("str", [str(v) for v in vals])
        elif name in ("NOM_RBD", "NOM_COM_RBD"):
            cols[name.lower()] = ("str", vals)
        elif name == "COD_DEPE2":
            cols[name.lower()] = ("int", vals)
        else:
            cols[name.lower()] = ("double", [None if v is None else float(v) for v in vals])
    if extra:
        n = len(t)
        cols["nom_espe"] = ("str", ["x"] * n)
        cols["zona_rft"] = ("factor", ["Norte 1" if i % 2 else "Sur 2" for i in range(n)])
        cols["nombre_slep"] = ("str", [None] * n)
        cols["tasa"] = ("double", [0.5] * n)
    return cols


def test_import_rds_real_file(tmp_path, home, run_cli):
    t = demo_table((2025,)).slice(0, 2500)
    cols = _r_columns(t)
    cols["edad_alu"] = ("double", [None] + cols["edad_alu"][1][1:])  # NA age is allowed
    path = tmp_path / "matricula.rds"
    write_rds(path, cols)
    assert gzip.open(path).read(2) == b"X\n"
    r = run_cli("import-rds", str(path))
    assert r.returncode == 0, r.stderr
    assert "columnas ignoradas" in r.stdout and "zona_rft" in r.stdout
    n, m = _published_rows(home)
    assert n == 2500 and m["source"]["kind"] == "rds"
    got = pq.read_table(home / "data/processed/current/matricula_2025.parquet")
    assert got.schema.field("RBD").type == pa.int32()
    expected_nulls = t["EDAD_ALU"].null_count + (0 if t["EDAD_ALU"][0].as_py() is None else 1)
    assert got["EDAD_ALU"].null_count == expected_nulls
    assert sorted(got["RBD"].to_pylist()) == sorted(t["RBD"].to_pylist())


def test_import_rds_reports_uncoercible(tmp_path, home, run_cli):
    t = demo_table((2025,)).slice(0, 300)
    cols = _r_columns(t, extra=False)
    cols["rbd"][1][4] = "RBD-12"
    cols["cod_grado"][1][7] = 3.5
    cols["mrun"][1][8] = None
    path = tmp_path / "malo.rds"
    write_rds(path, cols, compress=False)
    r = run_cli("import-rds", str(path))
    assert r.returncode == 4
    assert "fila 5, columna RBD, valor «RBD-12»: no es un número entero" in r.stderr
    assert "fila 8, columna COD_GRADO, valor «3.5»" in r.stderr
    assert "fila 9, columna MRUN" in r.stderr and "vacío" in r.stderr
    assert current_version(home) is None


def test_import_rds_not_an_rds(tmp_path, run_cli):
    p = tmp_path / "falso.rds"
    p.write_bytes(b"esto no es R")
    r = run_cli("import-rds", str(p))
    assert r.returncode == 6 and "falso.rds" in r.stderr and "Traceback" not in r.stderr
