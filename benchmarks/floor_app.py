"""The floor of the hot-path benchmark: a bare FastAPI endpoint doing one database round trip per request."""

from __future__ import annotations

import os

import sqlalchemy as sa
from fastapi import FastAPI

from app.db import create_db_engine

engine = create_db_engine(os.environ["PREFHUB_DATABASE_URL"])
app = FastAPI()


@app.post("/floor")
def floor() -> dict[str, int]:
    with engine.connect() as connection:
        return {"value": int(connection.execute(sa.text("SELECT 1")).scalar_one())}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
