"""Jinja filters for the Chilean formats defined in visualizador_emtp.fmt."""

from visualizador_emtp.fmt import local_dt, miles, pct, signed_pct


def register_filters(app) -> None:
    app.jinja_env.filters.update(miles=miles, pct=pct, signed_pct=signed_pct, local_dt=local_dt)
