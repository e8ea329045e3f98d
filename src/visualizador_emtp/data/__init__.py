"""EMTP enrollment data: catalog, canonical schema, sources, refresh, store and the cube."""
