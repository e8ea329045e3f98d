"""Deterministic, realistic demo data (student rows in the canonical schema).

Magnitudes follow docs/reference (MINEDUC 2018-2025 EMTP 3°-4° + adults): per-year totals,
2025 shares by specialty (and its % women), region, dependencia, rural and Dual. Years 2015-2017
use estimated totals (no published figure in the reference). The joint table region ×
dependencia × rural × specialty is fitted by iterative proportional fitting on the offer of
~970 synthetic schools, so every margin matches while keeping plausible structure (mining in
the north, maritime on the coast, agriculture in rural schools).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from visualizador_emtp.data import catalog
from visualizador_emtp.data.schema import SCHEMA

# year: (youth 3°+4°, adults, % women)
YEAR_TOTALS: dict[int, tuple[int, int, float]] = {
    2015: (158_412, 11_906, 47.6),   # estimated
    2016: (156_947, 10_881, 47.5),   # estimated
    2017: (155_960, 9_902, 47.3),    # estimated
    2018: (155_283, 9_347, 47.2),
    2019: (155_809, 9_464, 47.0),
    2020: (156_855, 8_023, 46.4),
    2021: (161_797, 8_842, 45.8),
    2022: (162_813, 7_242, 45.4),
    2023: (160_303, 7_239, 45.6),
    2024: (161_162, 7_251, 45.9),
    2025: (165_913, 7_484, 46.1),
}
DEFAULT_YEARS = (2015, 2025)

# 2025 youth 3°-4° by specialty: students, % women
ESPE_2025: dict[int, tuple[int, float]] = {
    41005: (32_368, 57.4), 61003: (14_832, 61.1), 41002: (13_393, 51.1), 53014: (12_391, 17.0),
    64008: (11_372, 79.7), 52010: (11_315, 14.6), 64001: (9_543, 97.3), 72007: (7_657, 43.5),
    52013: (7_469, 18.0), 53015: (6_626, 18.6), 58035: (5_263, 26.8), 52009: (4_612, 16.4),
    58034: (3_632, 24.5), 51009: (2_923, 31.4), 63009: (2_639, 65.1), 56027: (2_172, 60.9),
    58033: (2_128, 24.1), 54018: (1_986, 38.7), 63011: (1_723, 64.4), 54019: (1_324, 48.9),
    55023: (1_291, 46.5), 55022: (1_289, 53.7), 61001: (1_268, 55.4), 51006: (1_136, 22.2),
    81003: (979, 36.9), 54020: (704, 43.6), 81004: (696, 47.6), 51005: (577, 26.3),
    57030: (542, 90.8), 71005: (541, 30.9), 71001: (531, 31.6), 51003: (373, 28.4),
    81005: (322, 15.2), 52012: (296, 21.3),
}
REGION_2025: dict[int, int] = {
    13: 57_495, 5: 13_881, 7: 12_765, 8: 12_522, 9: 11_429, 10: 9_966, 6: 9_461, 2: 7_667, 4: 7_350,
    1: 5_706, 3: 4_549, 14: 4_435, 16: 4_198, 15: 2_409, 12: 1_389, 11: 691,
}
DEPE2_2025: dict[int, int] = {2: 65_605, 1: 49_564, 5: 29_975, 4: 20_769}
RURAL_SHARE = 0.056
DUAL_SHARE = 0.113
GRADE3_SHARE = 87_557 / (87_557 + 78_356)
# adults: specialty -> share, % women (assumed; the reference gives only totals)
ADULT_ESPE: dict[int, tuple[float, float]] = {
    41005: (0.30, 58.0), 41002: (0.15, 55.0), 53014: (0.13, 12.0), 52010: (0.10, 8.0),
    52013: (0.05, 10.0), 61003: (0.10, 68.0), 64008: (0.10, 85.0), 72007: (0.07, 40.0),
}
ADULT_GRADES = ((1, 2_868 / 7_484), (3, 0.33), (4, 1 - 2_868 / 7_484 - 0.33))

NORTH = {15, 1, 2, 3, 4}
COAST = {15, 1, 2, 3, 4, 5, 6, 7, 16, 8, 9, 14, 10, 11, 12}
FOREST = {7, 16, 8, 9, 14, 10, 11}
PEOPLE = ("Gabriela Mistral", "Pablo Neruda", "Arturo Prat", "Bernardo O'Higgins", "José Miguel Carrera",
          "Manuel Rodríguez", "Andrés Bello", "Pedro Aguirre Cerda", "Eduardo Frei Montalva", "Violeta Parra",
          "Juana Ross de Edwards", "Padre Alberto Hurtado", "Claudio Arrau", "Luis Cruz Martínez",
          "Vicente Pérez Rosales", "Ignacio Carrera Pinto", "Javiera Carrera", "Marta Brunet",
          "Benjamín Vicuña Mackenna", "Almirante Latorre", "Cardenal Caro", "Presidente Balmaceda",
          "Amanda Labarca", "Isabel Riquelme", "Teniente Merino", "Héroes de la Concepción", "Don Bosco",
          "San Francisco de Asís", "Santa Teresa de Los Andes", "Diego Portales", "Abate Molina",
          "Lautaro", "Caupolicán", "Galvarino", "Domingo Santa María", "Salvador Allende", "Jorge Alessandri",
          "Clotario Blest", "Elena Caffarena", "Manuel Montt")
KIND_BY_RAMA = {400: "COMERCIAL", 500: "INDUSTRIAL", 600: "POLITÉCNICO", 700: "AGRÍCOLA", 800: "MARÍTIMO"}


def parse_years(text: str) -> tuple[int, ...]:
    """'2015-2025' or '2024' or '2018,2020' -> years; ValueError with a Spanish message."""
    years: set[int] = set()
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            a, _, b = part.partition("-")
            if not (a.isdigit() and b.isdigit()):
                raise ValueError(f"Rango de años inválido: '{part}' (use p. ej. 2015-2025).")
            lo, hi = sorted((int(a), int(b)))
            years.update(range(lo, hi + 1))
        elif part.isdigit():
            years.add(int(part))
        else:
            raise ValueError(f"Año inválido: '{part}'.")
    bad = sorted(y for y in years if y not in YEAR_TOTALS)
    if not years:
        raise ValueError("No se indicó ningún año.")
    if bad:
        raise ValueError(f"Sin magnitudes de referencia para {', '.join(map(str, bad))}: "
                         f"los datos de demostración cubren {min(YEAR_TOTALS)}–{max(YEAR_TOTALS)}.")
    return tuple(sorted(years))


def _lr_round(x: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder rounding of non-negative x to integers summing to ``total``."""
    x = np.asarray(x, dtype=np.float64)
    s = x.sum()
    if s <= 0 or total <= 0:
        return np.zeros(len(x), dtype=np.int64)
    x = x * (total / s)
    base = np.floor(x).astype(np.int64)
    rest = int(total - base.sum())
    if rest > 0:
        order = np.argsort(-(x - base), kind="stable")
        base[order[:rest]] += 1
    return base


def _split(n: np.ndarray, p: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Split counts n into (round(n·p), rest), p per element."""
    a = np.floor(n * p + 0.5).astype(np.int64)
    a = np.minimum(a, n)
    return a, n - a


class _Schools:
    """The synthetic school directory and what each school offers."""

    def __init__(self, rng: np.random.Generator, n_youth: int = 928, n_adult_only: int = 42):
        regions = np.array(sorted(REGION_2025), dtype=np.int64)
        reg_share = np.array([REGION_2025[r] for r in regions], dtype=np.float64)
        n_reg = _lr_round(reg_share ** 0.85, n_youth)
        n_reg = np.maximum(n_reg, 6)
        reg = np.repeat(regions, n_reg)
        n = len(reg)
        rural = (rng.random(n) < 0.12) & (reg != 13) | (rng.random(n) < 0.04)
        depe_p = {2: 0.45, 1: 0.31, 5: 0.16, 4: 0.08}
        depe2 = rng.choice(list(depe_p), size=n, p=list(depe_p.values()))
        depe2[rural & (depe2 == 4)] = 1
        # adult-only schools (CEIA): municipal/SLEP, urban
        reg_a = rng.choice(regions, size=n_adult_only, p=reg_share / reg_share.sum())
        self.region = np.concatenate([reg, reg_a])
        self.rural = np.concatenate([rural, np.zeros(n_adult_only, bool)]).astype(np.int8)
        self.depe2 = np.concatenate([depe2, rng.choice([1, 5], size=n_adult_only, p=[0.7, 0.3])])
        self.youth = np.concatenate([np.ones(n, bool), np.zeros(n_adult_only, bool)])
        total = len(self.region)
        self.n = total
        # COD_DEPE detail; SLEP schools were municipal before their transfer year
        self.depe = np.where(self.depe2 == 1, rng.choice([1, 2], size=total),
                             np.where(self.depe2 == 2, 3, np.where(self.depe2 == 4, 5, 6))).astype(np.int8)
        self.muni_depe = rng.choice([1, 2], size=total).astype(np.int8)
        self.slep_year = rng.choice([2018, 2019, 2020, 2021, 2022, 2023, 2024, 2025], size=total,
                                    p=[0.06, 0.06, 0.08, 0.1, 0.12, 0.18, 0.2, 0.2])
        # comunas: regional capital and provincial capitals weigh more; rural schools avoid capitals
        self.comuna = np.zeros(total, dtype=np.int64)
        for r in np.unique(self.region):
            comunas = [c for c in catalog.comunas_of_region(int(r)) if c.code not in (12202,)]
            codes = np.array([c.code for c in comunas])
            w_urb = np.array([20.0 if c.code % 1000 == 101 else 6.0 if c.code % 100 == 1 else
                              4.0 if r == 13 else 1.0 for c in comunas])
            w_rur = np.where(w_urb >= 20, 0.2, 1.0)
            for is_rural, w in ((False, w_urb), (True, w_rur)):
                idx = np.nonzero((self.region == r) & (self.rural.astype(bool) == is_rural))[0]
                if len(idx):
                    self.comuna[idx] = rng.choice(codes, size=len(idx), p=w / w.sum())
        # RBD: unique, stable, roughly grouped by region like the real numbering
        rbd = rng.choice(np.arange(1, 40_000), size=total, replace=False)
        order = np.argsort(np.array([catalog.region_order(int(r)) for r in self.region]) * 100_000 + rbd,
                           kind="stable")
        self.rbd = np.empty(total, dtype=np.int64)
        self.rbd[order] = np.sort(rbd)
        self.weight = rng.lognormal(0.0, 0.55, size=total) * np.where(self.rural == 1, 0.45, 1.0)
        self.weight *= np.where(self.depe2 == 4, 2.2, 1.0)
        # youth offer
        espe = np.array(sorted(ESPE_2025), dtype=np.int64)
        base_p = np.array([ESPE_2025[e][0] for e in espe], dtype=np.float64) ** 0.6
        pairs_s, pairs_e = [], []
        for i in np.nonzero(self.youth)[0]:
            r, ru = int(self.region[i]), bool(self.rural[i])
            p = base_p.copy()
            for j, e in enumerate(espe):
                sec = e // 100
                if sec == 540:
                    p[j] *= 6.0 if r in NORTH else (1.0 if r in (6, 13) else 0.05)
                elif sec == 810:
                    p[j] *= 3.0 if r in {8, 10, 11, 12, 5, 1, 2} else (0.4 if r in COAST else 0.0)
                elif sec == 710:
                    p[j] *= 5.0 if r in FOREST else 0.1
                elif e == 52012:
                    p[j] *= 4.0 if r in (13, 5, 8, 12) else 0.0
                if ru:
                    p[j] *= 6.0 if sec in (720, 710) else (0.4 if sec in (580, 550, 560, 570, 630, 540) else 1.0)
            k = int(min(1 + rng.poisson(2.3), 7))
            chosen = rng.choice(espe, size=min(k, int((p > 0).sum())), replace=False, p=p / p.sum())
            pairs_s.extend([i] * len(chosen))
            pairs_e.extend(chosen.tolist())
        # make sure every specialty is offered by at least two schools
        offered = set(pairs_e)
        for e in espe:
            if int(e) not in offered:
                for i in rng.choice(np.nonzero(self.youth & (self.region == 13))[0], size=2, replace=False):
                    pairs_s.append(int(i))
                    pairs_e.append(int(e))
        self.pair_school = np.array(pairs_s, dtype=np.int64)
        self.pair_espe = np.array(pairs_e, dtype=np.int64)
        self.pair_weight = self.weight[self.pair_school] * rng.lognormal(0, 0.35, size=len(pairs_s))
        self.pair_dual = np.zeros(len(pairs_s), dtype=bool)
        # adult offer: all adult-only schools plus ~70 youth schools
        adult_idx = np.concatenate([np.nonzero(~self.youth)[0],
                                    rng.choice(np.nonzero(self.youth & (self.rural == 0))[0], 70, replace=False)])
        a_espe = np.array(list(ADULT_ESPE))
        a_p = np.array([ADULT_ESPE[e][0] for e in a_espe])
        ps, pe = [], []
        for i in adult_idx:
            k = int(rng.integers(1, 4))
            for e in rng.choice(a_espe, size=k, replace=False, p=a_p / a_p.sum()):
                ps.append(int(i))
                pe.append(int(e))
        self.apair_school = np.array(ps, dtype=np.int64)
        self.apair_espe = np.array(pe, dtype=np.int64)
        self.apair_weight = self.weight[self.apair_school] * rng.lognormal(0, 0.3, size=len(ps))
        self.names = self._names(rng)
        self.mencion_choice = rng.integers(0, 1_000_000, size=max(len(pairs_s), 1))

    def _names(self, rng: np.random.Generator) -> list[str]:
        names, used = [], set()
        main_rama: dict[int, int] = {}
        for s, e in zip(self.pair_school, self.pair_espe):
            main_rama.setdefault(int(s), int(catalog.SECTORES[int(e) // 100].rama))
        for i in range(self.n):
            com = (catalog.comuna_name(int(self.comuna[i])) or "").upper()
            person = PEOPLE[int(rng.integers(len(PEOPLE)))].upper()
            d2 = int(self.depe2[i])
            if not self.youth[i]:
                name = rng.choice([f"CEIA {com}", f"CENTRO DE EDUCACIÓN INTEGRADA DE ADULTOS {person}"])
            elif d2 in (1, 5):
                kind = KIND_BY_RAMA.get(main_rama.get(i, 400), "POLITÉCNICO")
                name = rng.choice([f"LICEO {kind} {com}", f"LICEO TÉCNICO PROFESIONAL {person}",
                                   f"LICEO {kind} A-{int(rng.integers(1, 130))} {com}",
                                   f"COMPLEJO EDUCACIONAL {person}", f"LICEO POLIVALENTE {person}"])
            elif d2 == 4:
                kind = KIND_BY_RAMA.get(main_rama.get(i, 500), "INDUSTRIAL")
                name = rng.choice([f"LICEO {kind} {person}", f"INSTITUTO {kind} {com}",
                                   f"LICEO {kind} A-{int(rng.integers(1, 130))}"])
            else:
                name = rng.choice([f"COLEGIO TÉCNICO PROFESIONAL {person}", f"INSTITUTO {person}",
                                   f"CENTRO EDUCACIONAL {person}", f"LICEO TÉCNICO {com}",
                                   f"COLEGIO POLITÉCNICO {person}"])
            name = str(name)
            if name in used:
                name = f"{name} DE {com}" if f"{name} DE {com}" not in used else f"{name} {i}"
            used.add(name)
            names.append(name)
        return names


def _ipf(s: _Schools, iterations: int = 60) -> np.ndarray:
    """Share of 2025 youth per (school, specialty) pair, fitted to all reference margins."""
    regions = sorted(REGION_2025)
    depes = sorted(DEPE2_2025)
    espes = sorted(ESPE_2025)
    ri = {r: i for i, r in enumerate(regions)}
    di = {d: i for i, d in enumerate(depes)}
    ei = {e: i for i, e in enumerate(espes)}
    sch = s.pair_school
    cell = (np.array([ri[int(r)] for r in s.region[sch]]), np.array([di[int(d)] for d in s.depe2[sch]]),
            s.rural[sch].astype(np.int64), np.array([ei[int(e)] for e in s.pair_espe]))
    shape = (len(regions), len(depes), 2, len(espes))
    seed = np.zeros(shape)
    np.add.at(seed, cell, s.pair_weight)
    tot = sum(REGION_2025.values())
    m_r = np.array([REGION_2025[r] for r in regions]) / tot
    m_d = np.array([DEPE2_2025[d] for d in depes]) / sum(DEPE2_2025.values())
    m_u = np.array([1 - RURAL_SHARE, RURAL_SHARE])
    m_e = np.array([ESPE_2025[e][0] for e in espes], dtype=float)
    m_e /= m_e.sum()
    p = seed / seed.sum()
    for _ in range(iterations):
        for axis, m in ((0, m_r), (1, m_d), (2, m_u), (3, m_e)):
            other = tuple(a for a in range(4) if a != axis)
            cur = p.sum(axis=other)
            f = np.divide(m, cur, out=np.zeros_like(m), where=cur > 0)
            shp = [1, 1, 1, 1]
            shp[axis] = -1
            p = p * f.reshape(shp)
    w_cell = seed[cell]
    return p[cell] * s.pair_weight / w_cell


def _age(rng: np.random.Generator, grade: np.ndarray, adult: bool) -> np.ndarray:
    n = len(grade)
    if adult:
        age = 18 + np.floor(rng.gamma(1.6, 8.0, size=n)).astype(np.int64)
        return np.minimum(age, 72)
    offs = rng.choice([-1, 0, 1, 2, 3], size=n, p=[0.01, 0.58, 0.31, 0.07, 0.03])
    return 13 + grade.astype(np.int64) + offs


def generate(years: tuple[int, ...] = tuple(range(DEFAULT_YEARS[0], DEFAULT_YEARS[1] + 1)), seed: int = 2025):
    """Yield one pyarrow Table (canonical schema) per requested year."""
    rng = np.random.default_rng(seed)
    s = _Schools(rng)
    share = _ipf(s)
    # Dual courses: (school, specialty) pairs picked until 11.3 % of youth (rural courses rarely Dual)
    order = rng.permutation(len(share))
    order = order[np.argsort(s.rural[s.pair_school[order]], kind="stable")]
    cum = np.cumsum(share[order])
    s.pair_dual[order[: int(np.searchsorted(cum, DUAL_SHARE)) + 1]] = True
    a_share = np.array([ADULT_ESPE[int(e)][0] for e in s.apair_espe]) * s.apair_weight
    names = pa.array(s.names, pa.string())
    com_names = pa.array([(catalog.comuna_name(int(c)) or "").upper() for c in s.comuna], pa.string())
    for year in years:
        youth_total, adult_total, pct_w = YEAR_TOTALS[year]
        yrng = np.random.default_rng([seed, year])
        wf = pct_w / YEAR_TOTALS[2025][2]
        noise = yrng.lognormal(0, 0.08, size=len(share))
        n_pair = _lr_round(share * noise, youth_total)
        g3, g4 = _split(n_pair, np.clip(GRADE3_SHARE + yrng.normal(0, 0.04, len(n_pair)), 0.3, 0.75))
        pw = np.array([ESPE_2025[int(e)][1] for e in s.pair_espe]) / 100 * wf
        parts = []
        for grade, cnt in ((3, g3), (4, g4)):
            women, men = _split(cnt, np.clip(pw, 0, 1))
            for gen, c in ((2, women), (1, men)):
                parts.append((np.repeat(np.arange(len(c)), c), grade, gen, False))
        na = _lr_round(a_share * yrng.lognormal(0, 0.1, size=len(a_share)), adult_total)
        apw = np.array([ADULT_ESPE[int(e)][1] for e in s.apair_espe]) / 100
        rest = na
        for k, (grade, frac) in enumerate(ADULT_GRADES):
            cnt = rest if k == len(ADULT_GRADES) - 1 else np.minimum(np.floor(na * frac + 0.5).astype(np.int64), rest)
            rest = rest - cnt
            women, men = _split(cnt, apw)
            for gen, c in ((2, women), (1, men)):
                parts.append((np.repeat(np.arange(len(c)), c), grade, gen, True))
        yield _rows(s, year, parts, yrng, names, com_names)


def _rows(s: _Schools, year: int, parts, rng, names: pa.Array, com_names: pa.Array) -> pa.Table:
    sch, espe, grade, gen, adult, dual = [], [], [], [], [], []
    for idx, g, sex, is_adult in parts:
        if is_adult:
            sch.append(s.apair_school[idx])
            espe.append(s.apair_espe[idx])
            dual.append(np.zeros(len(idx), bool))
        else:
            sch.append(s.pair_school[idx])
            espe.append(s.pair_espe[idx])
            dual.append(s.pair_dual[idx])
        grade.append(np.full(len(idx), g, np.int8))
        gen.append(np.full(len(idx), sex, np.int8))
        adult.append(np.full(len(idx), is_adult))
    sch, espe, grade, gen = (np.concatenate(x) for x in (sch, espe, grade, gen))
    adult, dual = np.concatenate(adult), np.concatenate(dual)
    n = len(sch)
    sec = espe // 100
    rama = (sec // 100) * 100
    ense = rama + np.where(adult, 63, 10)
    depe2 = s.depe2[sch].copy()
    depe = s.depe[sch].copy()
    pre_slep = (depe2 == 5) & (s.slep_year[sch] > year)
    depe2[pre_slep] = 1
    depe[pre_slep] = s.muni_depe[sch][pre_slep]
    age = np.where(adult, _age(rng, grade, True), _age(rng, grade, False))
    age_valid = rng.random(n) > 0.003
    if year >= 2017:
        des = np.where(adult, 1, np.where(dual, 2, np.where(rng.random(n) < 0.006, 3, 1)))
    else:
        des = np.zeros(n, np.int64)
    men = np.zeros(n, np.int64)
    if year == 2017 or year >= 2021:
        for e, (prefix, labels) in catalog._MEN_ROWS.items():
            m = espe == e
            if not m.any():
                continue
            pc_idx = labels.index("Plan Común") + 1
            others = [i + 1 for i, lab in enumerate(labels) if lab != "Plan Común"]
            pick = np.array(others)[(sch[m] * 7 + espe[m]) % len(others)]
            men[m] = prefix * 1000 + np.where(grade[m] == 3, pc_idx, pick)
    salt = (year * 7919) % 1_000_003
    mrun = (np.arange(n, dtype=np.int64) * 2_654_435_761 + salt) % 26_000_000 + 1_000_000
    perm = rng.permutation(n)
    cols = {
        "AGNO": np.full(n, year, np.int16), "RBD": s.rbd[sch], "NOM_RBD": names.take(pa.array(sch)),
        "COD_REG_RBD": s.region[sch], "COD_COM_RBD": s.comuna[sch], "NOM_COM_RBD": com_names.take(pa.array(sch)),
        "COD_DEPE": depe, "COD_DEPE2": depe2, "RURAL_RBD": s.rural[sch], "COD_ENSE": ense, "COD_GRADO": grade,
        "COD_DES_CUR": des, "MRUN": mrun, "GEN_ALU": gen,
        "EDAD_ALU": pa.array(age, pa.int8(), mask=~age_valid), "COD_RAMA": rama, "COD_SEC": sec,
        "COD_ESPE": espe, "COD_MEN": men,
    }
    arrays = []
    for f in SCHEMA:
        v = cols[f.name]
        arrays.append(v if isinstance(v, pa.Array) else pa.array(v).cast(f.type))
    t = pa.Table.from_arrays(arrays, schema=SCHEMA)
    # rows ordered by school (as the MINEDUC files are), students shuffled within
    t = t.take(pa.array(perm))
    return t.sort_by([("RBD", "ascending"), ("COD_GRADO", "ascending")])


class DemoSource:
    """Demo data behind the Source interface (already canonical), published like any refresh."""

    kind = "demo"
    canonical = True

    def __init__(self, years: tuple[int, ...], seed: int = 2025):
        self.years = years
        self.seed = seed
        self.notes = [f"datos de demostración (semilla {seed})"]

    def describe(self) -> str:
        return f"demo: años {self.years[0]}–{self.years[-1]}, semilla {self.seed}"

    def batches(self):
        offset = 0
        for t in generate(self.years, self.seed):
            for b in t.to_batches(max_chunksize=250_000):
                bt = pa.Table.from_batches([b], schema=t.schema)
                yield bt, np.arange(offset + 1, offset + len(bt) + 1, dtype=np.int64)
                offset += len(bt)
