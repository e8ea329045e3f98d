from visualizador_emtp.data import catalog


def test_regions_north_to_south_and_names():
    assert catalog.REGION_ORDER == (15, 1, 2, 3, 4, 5, 13, 6, 7, 16, 8, 9, 14, 10, 11, 12)
    assert catalog.region_short(13) == "RM"
    assert catalog.region_name(16) == "Ñuble"
    assert catalog.region_order(15) < catalog.region_order(12)


def test_especialidades_keyed_by_code_and_sector_rule():
    emtp = catalog.EMTP_ESPECIALIDADES
    assert len(emtp) == 61
    for code in emtp:
        assert catalog.especialidad_sector(code) == code // 100
        assert catalog.sector_rama(code // 100) in catalog.EMTP_RAMAS
    # same name, different codes
    assert catalog.especialidad_name(62004) == catalog.especialidad_name(64001) == "Atención de párvulos"
    assert len({c // 100 for c in emtp}) == 16


def test_menciones_and_dependencia():
    assert catalog.mencion_name(51007002) == "Edificación"
    assert catalog.MENCIONES[51007002].especialidad == 51009
    assert catalog.mencion_name(64008003) == "Plan Común"
    assert catalog.DEPE_TO_DEPE2 == {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5}
    assert catalog.dependencia_name(5) == "Corporación de Administración Delegada"


def test_comunas_complete():
    cur = catalog.comunas(current_only=True)
    assert len(cur) == 346
    assert catalog.comuna_name(13101) == "Santiago"
    assert catalog.comuna_region(16101) == 16 and catalog.comuna_region(8401) == 8  # pre-2018 Ñuble
    per_region = {r: len(catalog.comunas_of_region(r)) for r in catalog.REGIONS}
    assert per_region[13] == 52 and per_region[5] == 38 and per_region[15] == 4 and per_region[16] == 21
    assert all(c.region in catalog.REGIONS for c in catalog.comunas().values())
    assert catalog.label("COD_COM_RBD", 99999) == "99999"
