"""Versioned schema migrations: load a dialect's `NNNN_name.sql` files, apply the missing ones, or
only check that none is missing. Dialect-neutral: each SQL store supplies the `SchemaTarget` that
runs one migration in one transaction and records it in `schema_migrations`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from longrunning.core.errors import StoreError

_FILE_NAME = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


class SchemaTarget(Protocol):
    async def applied_versions(self) -> set[int]:
        """The versions recorded in `schema_migrations` (empty if the table does not exist)."""
        ...

    async def apply_migration(self, migration: Migration) -> bool:
        """Run `migration` and record it, in one transaction, unless another process already
        recorded it (checked inside that transaction). Return whether it ran."""
        ...


def load_migrations(dialect: str) -> list[Migration]:
    """The migrations packaged under `longrunning/stores/migrations/<dialect>/`, in order."""
    folder = resources.files("longrunning.stores").joinpath("migrations", dialect)
    migrations: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.fullmatch(entry.name)
        if match is None:
            raise StoreError(f"migration file {entry.name} is not named NNNN_name.sql")
        version = int(match["version"])
        migrations.append(Migration(version, match["name"], entry.read_text(encoding="utf-8")))
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise StoreError(f"two {dialect} migrations share a version: {versions}")
    if not migrations:
        raise StoreError(f"no {dialect} migrations are packaged")
    return migrations


async def apply(target: SchemaTarget, migrations: list[Migration]) -> list[Migration]:
    """Apply every migration not yet recorded, oldest first; return those this call ran."""
    done = await target.applied_versions()
    ran: list[Migration] = []
    for migration in migrations:
        if migration.version not in done and await target.apply_migration(migration):
            ran.append(migration)
    return ran


async def check(target: SchemaTarget, migrations: list[Migration]) -> None:
    """Raise StoreError naming every migration the database lacks; change nothing."""
    done = await target.applied_versions()
    missing = [m.label for m in migrations if m.version not in done]
    if missing:
        raise StoreError(
            f"the database schema is out of date: missing migrations {', '.join(missing)}; "
            "apply them (longrunning migrate) before starting",
            reason="SCHEMA_OUT_OF_DATE",
        )
