import json
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from visualizador_emtp.data import catalog, demo

from .conftest import current_version


def _within(actual: float, expected: float, rel: float = 0.05) -> bool:
    return abs(actual - expected) <= rel * expected


def test_demo_cli_publishes_realistic_2025(home, run_cli):
    r = run_cli("demo-data", "--years", "2024-2025", "--seed", "11")
    assert r.returncode == 0, r.stderr
    assert "173.397 registros" in r.stdout
    vdir = home / "data" / "processed" / "versions" / current_version(home)
    manifest = json.loads((vdir / "manifest.json").read_text())
    assert manifest["years"]["2025"]["rows"] == 173_397 and manifest["years"]["2024"]["rows"] == 168_413
    t = pq.read_table(vdir / "matricula_2025.parquet")
    ense = t["COD_ENSE"].to_numpy()
    youth = ense % 100 == 10
    assert youth.sum() == 165_913 and (~youth).sum() == 7_484
    n = youth.sum()

    def shares(col):
        v = t[col].to_numpy()[youth]
        u, c = np.unique(v, return_counts=True)
        return dict(zip(u.tolist(), (c / n).tolist()))

    espe = shares("COD_ESPE")
    for code, (cnt, _) in demo.ESPE_2025.items():
        assert _within(espe.get(code, 0), cnt / 165_913), (code, espe.get(code), cnt / 165_913)
    sec = shares("COD_SEC")
    for code in {c // 100 for c in demo.ESPE_2025}:
        ref = sum(v[0] for c, v in demo.ESPE_2025.items() if c // 100 == code) / 165_913
        assert _within(sec[code], ref), code
    reg = shares("COD_REG_RBD")
    for code, cnt in demo.REGION_2025.items():
        assert _within(reg[code], cnt / 165_913), code
    dep = shares("COD_DEPE2")
    for code, cnt in demo.DEPE2_2025.items():
        assert _within(dep[code], cnt / 165_913), code
    assert 3 not in dep  # no particular pagado in EMTP
    assert _within(shares("RURAL_RBD")[1], 0.056)
    assert _within(shares("COD_DES_CUR")[2], 0.113)
    # gender split by sector
    gen = t["GEN_ALU"].to_numpy()[youth]
    secs = t["COD_SEC"].to_numpy()[youth]
    ref_w = {410: 55.6, 520: 16.1, 640: 87.7, 530: 17.6, 610: 60.6, 580: 25.5, 720: 43.5, 510: 28.5}
    for code, pct in ref_w.items():
        m = secs == code
        assert _within(100 * (gen[m] == 2).mean(), pct), code
    # schools, grades, ages, comunas
    rbd = t["RBD"].to_numpy()
    assert 900 <= len(np.unique(rbd)) <= 1000
    grade = t["COD_GRADO"].to_numpy()
    assert set(np.unique(grade[youth])) == {3, 4} and set(np.unique(grade[~youth])) <= {1, 3, 4}
    age = t["EDAD_ALU"].to_numpy(zero_copy_only=False)
    ya = age[youth & ~np.isnan(age.astype(float))]
    assert 16.3 < ya.mean() < 17.6 and ya.min() >= 14
    com = t["COD_COM_RBD"].to_numpy()
    regs = t["COD_REG_RBD"].to_numpy()
    for c in np.unique(com):
        assert catalog.comuna_region(int(c)) == int(regs[com == c][0])
    names = t["NOM_COM_RBD"].to_pylist()[:50]
    assert all(nm == catalog.comuna_name(int(c)).upper() for nm, c in zip(names, com[:50]))


def test_demo_is_deterministic_and_schools_stable():
    a = pa_concat(demo.generate((2025,), 5))
    b = pa_concat(demo.generate((2025,), 5))
    assert a.equals(b)
    c = pa_concat(demo.generate((2025,), 6))
    assert not a.equals(c)
    y24, y25 = demo.generate((2024, 2025), 5)
    s24 = dict(zip(y24["RBD"].to_pylist(), y24["NOM_RBD"].to_pylist()))
    s25 = dict(zip(y25["RBD"].to_pylist(), y25["NOM_RBD"].to_pylist()))
    common = set(s24) & set(s25)
    assert len(common) > 900 and all(s24[r] == s25[r] for r in common)


def pa_concat(gen):
    import pyarrow as pa
    return pa.concat_tables(list(gen))


def test_parse_years_errors():
    assert demo.parse_years("2018-2020") == (2018, 2019, 2020)
    with pytest.raises(ValueError, match="2030"):
        demo.parse_years("2029-2030")
    with pytest.raises(ValueError):
        demo.parse_years("abc")


@pytest.mark.slow
def test_default_eleven_years_under_30s(home, run_cli):
    t0 = time.monotonic()
    r = run_cli("demo-data")
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert elapsed < 30, elapsed
    m = json.loads((home / "data/processed/current/manifest.json").read_text())
    assert sorted(m["years"]) == [str(y) for y in range(2015, 2026)]
    assert 1_750_000 < m["rows"] < 1_950_000
