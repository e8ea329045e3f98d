"""Official MINEDUC code tables (Bases WEB "Matrícula por estudiante", annexes I, II, VII-IX).

Everything is keyed by code, never by name: names repeat across codes (e.g. "Atención de
párvulos" is both 62004 and 64001). Comunas (SUBDERE CUT codes) are package data in
``comunas.csv``. Lookups return ``None``-safe strings via ``label(column, code)``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Region:
    code: int
    name: str
    short: str
    order: int  # north-to-south display order (0 = Arica y Parinacota)


@dataclass(frozen=True)
class Comuna:
    code: int
    name: str
    region: int
    current: bool = True  # False: pre-2018 Ñuble codes (84xx, region Biobío), still found in old data


@dataclass(frozen=True)
class Sector:
    code: int
    name: str
    rama: int


@dataclass(frozen=True)
class Especialidad:
    code: int
    name: str
    sector: int
    emtp: bool = True  # False for artistic (91xxx-93xxx)


@dataclass(frozen=True)
class Mencion:
    code: int
    name: str
    especialidad: int


# --- Regions (Anexo I), rows north to south -------------------------------------------------
_REGION_ROWS = (
    (15, "Arica y Parinacota", "AYP"),
    (1, "Tarapacá", "TPCA"),
    (2, "Antofagasta", "ANTOF"),
    (3, "Atacama", "ATCMA"),
    (4, "Coquimbo", "COQ"),
    (5, "Valparaíso", "VALPO"),
    (13, "Metropolitana de Santiago", "RM"),
    (6, "Libertador Gral. Bernardo O'Higgins", "LGBO"),
    (7, "Maule", "MAULE"),
    (16, "Ñuble", "NUBLE"),
    (8, "Biobío", "BBIO"),
    (9, "La Araucanía", "ARAUC"),
    (14, "Los Ríos", "RIOS"),
    (10, "Los Lagos", "LAGOS"),
    (11, "Aysén del Gral. Carlos Ibáñez del Campo", "AYSEN"),
    (12, "Magallanes y de la Antártica Chilena", "MAG"),
)
REGIONS: dict[int, Region] = {c: Region(c, n, s, i) for i, (c, n, s) in enumerate(_REGION_ROWS)}
REGION_ORDER: tuple[int, ...] = tuple(r[0] for r in _REGION_ROWS)

# --- Dependencia (COD_DEPE detailed, COD_DEPE2 grouped) ----------------------------------------
DEPENDENCIAS: dict[int, str] = {
    1: "Corporación Municipal",
    2: "Municipal DAEM",
    3: "Particular Subvencionado",
    4: "Particular Pagado",
    5: "Corporación de Administración Delegada",
    6: "Servicio Local de Educación Pública",
}
DEPE_TO_DEPE2: dict[int, int] = {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5}
DEPENDENCIAS2: dict[int, str] = {
    1: "Municipal",
    2: "Particular Subvencionado",
    3: "Particular Pagado",
    4: "Corporación de Administración Delegada",
    5: "Servicio Local de Educación Pública",
}
DEPENDENCIAS2_SHORT: dict[int, str] = {1: "Municipal", 2: "Part. Subv.", 3: "Part. Pagado", 4: "Adm. Delegada", 5: "SLEP"}

# --- Rama (Anexo VIII) ------------------------------------------------------------------------
RAMAS: dict[int, str] = {
    0: "Ciclo General / Sin información",
    400: "Comercial",
    500: "Industrial",
    600: "Técnica",
    700: "Agrícola",
    800: "Marítima",
    900: "Artística",
}
EMTP_RAMAS: tuple[int, ...] = (400, 500, 600, 700, 800)

# --- Sector (Anexo VII): COD_SEC = COD_ESPE // 100 ------------------------------------------------
SECTORES: dict[int, Sector] = {s.code: s for s in (
    Sector(0, "Ciclo General / Sin información", 0),
    Sector(410, "Administración y Comercio", 400),
    Sector(510, "Construcción", 500),
    Sector(520, "Metalmecánico", 500),
    Sector(530, "Electricidad", 500),
    Sector(540, "Minero", 500),
    Sector(550, "Gráfica", 500),
    Sector(560, "Químico", 500),
    Sector(570, "Confección", 500),
    Sector(580, "Tecnología y Telecomunicaciones", 500),
    Sector(610, "Alimentación", 600),
    Sector(620, "Programas y Proyectos Sociales", 600),
    Sector(630, "Hotelería y Turismo", 600),
    Sector(640, "Salud y Educación", 600),
    Sector(710, "Maderero", 700),
    Sector(720, "Agropecuario", 700),
    Sector(810, "Marítimo", 800),
    Sector(910, "Artes Visuales", 900),
    Sector(920, "Artes Escénicas Teatro", 900),
    Sector(930, "Artes Escénicas Danza", 900),
)}

_ESPE_ROWS = (
    (0, "Ciclo General / Sin información"),
    (41001, "Administración"), (41002, "Contabilidad"), (41003, "Secretariado"), (41004, "Ventas"),
    (41005, "Administración (con mención)"),
    (51001, "Edificación"), (51002, "Terminaciones de Construcción"), (51003, "Montaje Industrial"),
    (51004, "Obras viales y de infraestructura"), (51005, "Instalaciones Sanitarias"),
    (51006, "Refrigeración y climatización"), (51009, "Construcción (con mención)"),
    (52008, "Mecánica Industrial"), (52009, "Construcciones Metálicas"), (52010, "Mecánica Automotriz"),
    (52011, "Matricería"), (52012, "Mecánica de mantención de aeronaves"),
    (52013, "Mecánica Industrial (con mención)"),
    (53014, "Electricidad"), (53015, "Electrónica"), (53016, "Telecomunicaciones"),
    (54018, "Explotación minera"), (54019, "Metalurgia Extractiva"), (54020, "Asistencia en geología"),
    (55022, "Gráfica"), (55023, "Dibujo Técnico"),
    (56025, "Operación de planta química"), (56026, "Laboratorio químico"),
    (56027, "Química Industrial (con mención)"),
    (57028, "Tejido"), (57029, "Textil"), (57030, "Vestuario y Confección Textil"), (57031, "Productos del cuero"),
    (58033, "Conectividad y Redes"), (58034, "Programación"), (58035, "Telecomunicaciones"),
    (61001, "Elaboración Industrial de Alimentos"), (61002, "Servicio de Alimentación Colectiva"),
    (61003, "Gastronomía (con mención)"),
    (62004, "Atención de párvulos"), (62005, "Atención de adultos mayores"), (62006, "Atención de Enfermería"),
    (62007, "Atención Social y Recreativa"), (62008, "Atención de Enfermería (con mención)"),
    (63009, "Servicio de turismo"), (63010, "Servicios Hoteleros"), (63011, "Servicio de hotelería"),
    (64001, "Atención de párvulos"), (64008, "Atención de Enfermería (con mención)"),
    (71001, "Forestal"), (71002, "Procesamiento de la madera"), (71003, "Productos de la madera"),
    (71004, "Celulosa y Papel"), (71005, "Muebles y Terminaciones de la Madera"),
    (72006, "Agropecuaria"), (72007, "Agropecuaria (con mención)"),
    (81001, "Naves mercantes y especiales"), (81002, "Pesquería"), (81003, "Acuicultura"),
    (81004, "Operación portuaria"), (81005, "Tripulación naves mercantes y especiales"),
    # Artistic (not EMTP; names not verified against the annex, kept only to recognise the codes)
    (91001, "Artes Visuales"), (91002, "Artes Audiovisuales"), (91003, "Diseño"),
    (91004, "Interpretación Musical"), (91005, "Composición Musical"),
    (92004, "Interpretación Teatral"), (92005, "Diseño Escénico"),
    (93006, "Interpretación en Danza"), (93007, "Monitoría en Danza"),
)
ESPECIALIDADES: dict[int, Especialidad] = {
    c: Especialidad(c, n, c // 100, emtp=(c // 100) not in (910, 920, 930)) for c, n in _ESPE_ROWS
}
EMTP_ESPECIALIDADES: tuple[int, ...] = tuple(c for c, e in ESPECIALIDADES.items() if c and e.emtp)

# --- Menciones (Anexo IX). Construcción uses prefix 51007 with specialty 51009. ---------------------
_MEN_ROWS = {
    41005: (41005, ("Plan Común", "Logística", "Recursos Humanos")),
    51009: (51007, ("Plan Común", "Edificación", "Terminaciones de la Construcción", "Obras Viales e Infraestructura")),
    52013: (52013, ("Plan Común", "Mantenimiento Electromecánico", "Máquinas-Herramientas", "Matricería")),
    56027: (56027, ("Plan Común", "Planta Química", "Laboratorio Químico")),
    61003: (61003, ("Plan Común", "Cocina", "Pastelería y Repostería")),
    64008: (64008, ("Adultos Mayores", "Enfermería", "Plan Común")),
    72007: (72007, ("Plan Común", "Agricultura", "Pecuaria", "Vitivinícola")),
}
MENCIONES: dict[int, Mencion] = {0: Mencion(0, "Sin mención", 0)}
for _espe, (_prefix, _names) in _MEN_ROWS.items():
    for _i, _name in enumerate(_names, start=1):
        _code = _prefix * 1000 + _i
        MENCIONES[_code] = Mencion(_code, _name, _espe)

# --- Enseñanza (Anexo II), TP codes only --------------------------------------------------------
ENSENANZAS: dict[int, str] = {
    410: "Enseñanza Media T-P Comercial Niños y Jóvenes",
    463: "Educación Media T-P Comercial Adultos",
    510: "Enseñanza Media T-P Industrial Niños y Jóvenes",
    563: "Educación Media T-P Industrial Adultos",
    610: "Enseñanza Media T-P Técnica Niños y Jóvenes",
    663: "Educación Media T-P Técnica Adultos",
    710: "Enseñanza Media T-P Agrícola Niños y Jóvenes",
    763: "Educación Media T-P Agrícola Adultos",
    810: "Enseñanza Media T-P Marítima Niños y Jóvenes",
    863: "Educación Media T-P Marítima Adultos",
}
ENSE_JOVENES: tuple[int, ...] = (410, 510, 610, 710, 810)
ENSE_ADULTOS: tuple[int, ...] = (463, 563, 663, 763, 863)
ENSE_ARTISTICA: tuple[int, ...] = (910, 963)
GRADOS_JOVENES: tuple[int, ...] = (3, 4)
GRADOS_ADULTOS: tuple[int, ...] = (1, 2, 3, 4)

# TIPO (derived): 1 jóvenes, 2 adultos
TIPOS: dict[int, str] = {1: "Jóvenes", 2: "Adultos"}
TIPO_CODES: dict[str, int] = {"jovenes": 1, "adultos": 2}

GRADOS: dict[int, str] = {1: "1° medio / 1er nivel", 2: "2° medio", 3: "3° medio", 4: "4° medio"}
GRADOS_ADULTOS_NOMBRE: dict[int, str] = {1: "Primer nivel (1° y 2° medio)", 2: "2° medio",
                                         3: "Segundo nivel (3° medio)", 4: "Tercer nivel (4° medio)"}
GENEROS: dict[int, str] = {0: "Sin información", 1: "Hombre", 2: "Mujer"}
ZONAS: dict[int, str] = {0: "Urbano", 1: "Rural"}
DES_CUR: dict[int, str] = {0: "No aplica", 1: "Sólo Liceo", 2: "Dual", 3: "Otro"}


@lru_cache(maxsize=1)
def _comunas() -> dict[int, Comuna]:
    text = resources.files(__package__).joinpath("comunas.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter=";")
    return {int(r["codigo"]): Comuna(int(r["codigo"]), r["nombre"], int(r["region"]), r["vigente"] == "1")
            for r in rows}


def comunas(current_only: bool = False) -> dict[int, Comuna]:
    """Comunas by CUT code: the 346 in force, plus (unless current_only) the 21 pre-2018 Ñuble codes."""
    if current_only:
        return {k: c for k, c in _comunas().items() if c.current}
    return _comunas()


def comunas_of_region(region: int, current_only: bool = True) -> list[Comuna]:
    return [c for c in _comunas().values() if c.region == region and (c.current or not current_only)]


# --- Lookups -------------------------------------------------------------------------------
def region_name(code: int) -> str | None:
    r = REGIONS.get(code)
    return r.name if r else None


def region_short(code: int) -> str | None:
    r = REGIONS.get(code)
    return r.short if r else None


def region_order(code: int) -> int:
    """Display position north to south; unknown codes sort last."""
    r = REGIONS.get(code)
    return r.order if r else 99


def comuna_name(code: int) -> str | None:
    c = _comunas().get(code)
    return c.name if c else None


def comuna_region(code: int) -> int | None:
    c = _comunas().get(code)
    return c.region if c else None


def dependencia_name(code: int) -> str | None:
    return DEPENDENCIAS.get(code)


def dependencia2_name(code: int) -> str | None:
    return DEPENDENCIAS2.get(code)


def rama_name(code: int) -> str | None:
    return RAMAS.get(code)


def sector_name(code: int) -> str | None:
    s = SECTORES.get(code)
    return s.name if s else None


def sector_rama(code: int) -> int | None:
    s = SECTORES.get(code)
    return s.rama if s else None


def especialidad_name(code: int) -> str | None:
    e = ESPECIALIDADES.get(code)
    return e.name if e else None


def especialidad_sector(code: int) -> int | None:
    e = ESPECIALIDADES.get(code)
    return e.sector if e else None


def mencion_name(code: int) -> str | None:
    m = MENCIONES.get(code)
    return m.name if m else None


def ense_name(code: int) -> str | None:
    return ENSENANZAS.get(code)


def ense_tipo(code: int) -> int | None:
    """1 jóvenes (x10), 2 adultos (x63), None otherwise."""
    if code in ENSE_JOVENES:
        return 1
    if code in ENSE_ADULTOS:
        return 2
    return None


def grado_name(grado: int, tipo: int | None = None) -> str | None:
    return (GRADOS_ADULTOS_NOMBRE if tipo == 2 else GRADOS).get(grado)


def genero_name(code: int) -> str | None:
    return GENEROS.get(code)


_LABELS = {
    "COD_REG_RBD": region_name,
    "COD_COM_RBD": comuna_name,
    "COD_DEPE": dependencia_name,
    "COD_DEPE2": dependencia2_name,
    "RURAL_RBD": ZONAS.get,
    "COD_RAMA": rama_name,
    "COD_SEC": sector_name,
    "COD_ESPE": especialidad_name,
    "COD_MEN": mencion_name,
    "COD_ENSE": ense_name,
    "COD_GRADO": grado_name,
    "GEN_ALU": genero_name,
    "TIPO": TIPOS.get,
    "COD_DES_CUR": DES_CUR.get,
}


def label(column: str, code) -> str:
    """Display name of a code of a schema column; the code itself when unknown."""
    fn = _LABELS.get(column)
    if fn is None or code is None:
        return "" if code is None else str(code)
    name = fn(int(code))
    return name if name is not None else str(code)


def valid_codes(column: str) -> frozenset[int] | None:
    """Codes accepted by validation for a column (None = no catalog for it)."""
    return _valid_codes().get(column)


@lru_cache(maxsize=1)
def _valid_codes() -> dict[str, frozenset[int]]:
    return {
        "COD_REG_RBD": frozenset(REGIONS),
        "COD_COM_RBD": frozenset(_comunas()),
        "COD_DEPE": frozenset(DEPENDENCIAS),
        "COD_DEPE2": frozenset(DEPENDENCIAS2),
        "RURAL_RBD": frozenset(ZONAS),
        "COD_RAMA": frozenset(c for c in RAMAS if c != 900),
        "COD_SEC": frozenset(c for c, s in SECTORES.items() if s.rama != 900),
        "COD_ESPE": frozenset(c for c, e in ESPECIALIDADES.items() if e.emtp),
        "COD_MEN": frozenset(MENCIONES),
        "COD_ENSE": frozenset(ENSENANZAS),
        "COD_GRADO": frozenset(GRADOS),
        "GEN_ALU": frozenset(GENEROS),
        "COD_DES_CUR": frozenset(DES_CUR),
    }
