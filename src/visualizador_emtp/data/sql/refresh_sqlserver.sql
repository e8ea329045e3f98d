-- Consulta por defecto de "emtp-admin refresh --source sqlserver".
-- Copie este archivo a EMTP_HOME/config/refresh.sql y ajuste el nombre de la tabla o vista.
--
-- Devuelve la matrícula EMTP de 3° y 4° medio (jóvenes) y de los niveles de adultos, con los
-- nombres de columna del esquema de registro MINEDUC "Matrícula por estudiante" (SIGE).
-- Regla EMTP: establecimientos en funcionamiento (ESTADO_ESTAB = 1); jóvenes COD_ENSE 410-810
-- grados 3 y 4; adultos COD_ENSE x63 niveles 1 a 4; se excluye la enseñanza artística.
-- Las columnas COD_SEC, COD_RAMA y COD_DEPE2 pueden omitirse: se derivan de COD_ESPE,
-- COD_ENSE y COD_DEPE. Los nombres se comparan sin distinguir mayúsculas.
SELECT m.AGNO, m.RBD, m.NOM_RBD, m.COD_REG_RBD, m.COD_COM_RBD, m.NOM_COM_RBD,
       m.COD_DEPE, m.COD_DEPE2, m.RURAL_RBD, m.COD_ENSE, m.COD_GRADO, m.COD_DES_CUR,
       m.MRUN, m.GEN_ALU, m.EDAD_ALU, m.COD_RAMA, m.COD_SEC, m.COD_ESPE, m.COD_MEN
FROM dbo.MATRICULA_ALUMNO AS m
WHERE m.ESTADO_ESTAB = 1
  AND m.AGNO >= 2015
  AND ((m.COD_ENSE IN (410, 510, 610, 710, 810) AND m.COD_GRADO IN (3, 4))
    OR (m.COD_ENSE IN (463, 563, 663, 763, 863) AND m.COD_GRADO IN (1, 2, 3, 4)))
  AND m.COD_SEC NOT IN (910, 920, 930)
