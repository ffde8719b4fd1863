"""Image records in the database (`images` table: name, digest, spec JSON)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from corral.images.records import Image
from corral.inventory.errors import Conflict, NotFound
from corral.store import schema

T = schema.images


def all_images(conn: Connection) -> list[Image]:
    rows = conn.execute(sa.select(T.c.spec).order_by(T.c.name))
    return [Image.model_validate(spec) for (spec,) in rows]


def find(conn: Connection, name: str) -> Image | None:
    spec = conn.execute(sa.select(T.c.spec).where(T.c.name == name)).scalar()
    return None if spec is None else Image.model_validate(spec)


def get(conn: Connection, name: str) -> Image:
    image = find(conn, name)
    if image is None:
        raise NotFound(f"image {name!r} does not exist (see `corral image list`)")
    return image


def insert(conn: Connection, image: Image) -> None:
    if find(conn, image.name) is not None:
        raise Conflict(f"image {image.name!r} already exists")
    conn.execute(sa.insert(T).values(**_row(image)))


def update(conn: Connection, image: Image, old_name: str | None = None) -> None:
    name = old_name or image.name
    conn.execute(sa.update(T).where(T.c.name == name).values(**_row(image)))


def delete(conn: Connection, name: str) -> None:
    conn.execute(sa.delete(T).where(T.c.name == name))


def _row(image: Image) -> dict[str, object]:
    return {"name": image.name, "digest": image.digest, "spec": image.model_dump(mode="json")}
