"""Human output of the `db` commands: tables of servers, databases and files, and the one-line
accounts of a database operation (started, ended). Rendering only: no HTTP, no exit codes.

Names come from the server: they go into `Text` objects, never into markup.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from longrunning.cli import render

Json = dict[str, Any]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def size(size_bytes: object) -> str:
    if not isinstance(size_bytes, int):
        return ""
    value = float(size_bytes)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{size_bytes} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _table(*columns: str) -> Table:
    table = Table(
        show_edge=False, pad_edge=False, box=None, header_style="bold", collapse_padding=True
    )
    for column in columns:
        right = column == "size"
        table.add_column(
            column, justify="right" if right else "left", no_wrap=right, overflow="fold"
        )
    return table


def servers_table(servers: list[Json]) -> Table:
    table = _table("name", "kind", "parent")
    for server in servers:
        table.add_row(*(Text(str(server.get(key, ""))) for key in ("name", "kind", "parent")))
    return table


def databases_table(databases: list[Json]) -> Table:
    table = _table("name", "size", "created")
    for db in databases:
        table.add_row(
            Text(str(db.get("name", ""))),
            size(db.get("sizeBytes")),
            render.short_time(db.get("createTime")),
        )
    return table


def files_table(files: list[Json]) -> Table:
    table = _table("name", "size", "modified")
    for file in files:
        table.add_row(
            Text(str(file.get("name", ""))),
            size(file.get("sizeBytes")),
            render.short_time(file.get("modifyTime")),
        )
    return table


def subject(op: Json) -> str:
    """`DATABASE COPY local/sales2`: what an operation does, to which database."""
    request = op.get("request", {})
    where = f"{request.get('server', '?')}/{request.get('database', '?')}"
    return f"{op.get('title') or op.get('kind', '')} {where}"


def started(op: Json) -> str:
    return f"{subject(op)}: operation {op.get('name', op.get('id', ''))}"


def succeeded(op: Json) -> str:
    """One line: done, how long it took, and what it returned beyond the database's name."""
    line = f"{subject(op)} SUCCEEDED"
    took = render.elapsed(op)
    if took is not None:
        line += f" after {took}"
    result = op.get("result")
    if isinstance(result, dict):
        rest = {k: v for k, v in result.items() if k not in ("server", "database")}
        if rest:
            line += ": " + ", ".join(f"{k}={render.compact(v, 80)}" for k, v in rest.items())
    return line


def unsuccessful(op: Json) -> str:
    """One line for stderr: FAILED with its error, or CANCELLED with how it stopped."""
    line = f"{subject(op)} {op.get('state', '?')}"
    took = render.elapsed(op)
    if took is not None:
        line += f" after {took}"
    if op.get("cancelOutcome"):
        line += f" ({op['cancelOutcome']})"
    error = op.get("error")
    if op.get("state") == "FAILED" and isinstance(error, dict):
        line += f": {render.error_line(error)}"
    return line
