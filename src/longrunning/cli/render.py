"""Human output of the `ops` commands with rich: operation panels, list tables, the live watch bar,
one-line summaries, and the `dm_operation_status` rows of `ops dmv`. Rendering only: no HTTP, no
argument parsing, no exit codes.

Operations arrive as the native API's JSON dicts. Text from the server goes into `Text` objects,
never into markup, so a phase like "[copy]" prints as written.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

Json = dict[str, Any]

STATE_STYLES = {
    "PENDING": "yellow",
    "RUNNING": "cyan",
    "SUCCEEDED": "green",
    "FAILED": "red",
    "CANCELLED": "magenta",
}


def state_text(op: Json) -> Text:
    state = str(op.get("state", "?"))
    text = Text()
    text.append(state, style=STATE_STYLES.get(state, ""))
    if op.get("cancelRequested") and not op.get("done"):
        text.append(" (cancel requested)", style="magenta")
    return text


def _percent(op: Json) -> float:
    value = op.get("progress", {}).get("percent", 0.0)
    return float(value) if isinstance(value, int | float) else 0.0


def compact(value: object, limit: int = 200) -> str:
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_line(error: Json) -> str:
    return f"{error.get('status', '?')} ({error.get('code', '?')}): {error.get('message', '')}"


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def short_time(value: object, *, compact: bool = False) -> str:
    when = _parse_time(value)
    pattern = "%m-%d %H:%M:%S" if compact else "%Y-%m-%d %H:%M:%SZ"
    return "" if when is None else when.astimezone(UTC).strftime(pattern)


def _until(value: object) -> str | None:
    when = _parse_time(value)
    if when is None:
        return None
    seconds = max((when - datetime.now(UTC)).total_seconds(), 0.0)
    return f"ETA {_duration(seconds)}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def operation_panel(op: Json) -> Panel:
    """Every field a person asks about, one per row; absent fields are left out."""
    progress = op.get("progress", {})
    rows: list[tuple[str, Text | str | None]] = [
        ("id", op.get("id")),
        ("name", op.get("name")),
        ("kind", op.get("kind")),
        ("state", state_text(op)),
        (
            "progress",
            f"{_percent(op):.0f}%" + (f"  {progress['phase']}" if progress.get("phase") else ""),
        ),
        (
            "estimated completion",
            None if op.get("done") else progress.get("estimatedCompletionTime"),
        ),
        ("cancellable", "yes" if op.get("cancellable") else "no"),
        ("cancel requested", op.get("cancelRequestTime")),
        ("cancel outcome", op.get("cancelOutcome")),
        ("error", error_line(op["error"]) if "error" in op else None),
        ("result", compact(op["result"]) if "result" in op else None),
        ("request", compact(op.get("request", {}))),
        ("labels", ", ".join(f"{k}={v}" for k, v in op.get("labels", {}).items()) or None),
        ("request id", op.get("requestId")),
        ("target", op.get("target")),
        ("queue", op.get("queue")),
        ("attempt", f"{op.get('attempt', 0)} of {op.get('maxAttempts', 1)}"),
        ("created", op.get("createTime")),
        ("started", op.get("startTime")),
        ("ended", op.get("endTime")),
        ("updated", op.get("updateTime")),
        ("deadline", op.get("deadline")),
        ("version", str(op.get("version", ""))),
    ]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        if value is not None and value != "":
            grid.add_row(key, value if isinstance(value, Text) else Text(str(value)))
    return Panel(
        grid, title=Text(f"operation {op.get('kind', '')}"), title_align="left", expand=False
    )


def operations_table(ops: list[Json], *, width: int = 80) -> Table:
    """A table that stays readable at 80 columns: the identifying columns never wrap, and phase
    and parent appear only when there is room (`ops get` shows everything)."""
    wide = width >= 120
    table = Table(
        show_edge=False, pad_edge=False, box=None, header_style="bold", collapse_padding=True
    )
    table.add_column("id", no_wrap=True, min_width=36)
    table.add_column("kind", no_wrap=True, min_width=10, overflow="ellipsis")
    table.add_column("state", no_wrap=True, min_width=9)
    table.add_column("percent", justify="right", no_wrap=True, min_width=7)
    table.add_column("created", no_wrap=True, min_width=14)
    if wide:
        table.add_column("phase", no_wrap=True, overflow="ellipsis", ratio=1)
        table.add_column("parent", no_wrap=True, overflow="ellipsis", ratio=1)
    for op in ops:
        cells: list[Text | str] = [
            Text(str(op.get("id", ""))),
            Text(str(op.get("kind", ""))),
            state_text(op),
            f"{_percent(op):.0f}%",
            Text(short_time(op.get("createTime"), compact=not wide)),
        ]
        if wide:
            cells.append(Text(str(op.get("progress", {}).get("phase") or "")))
            cells.append(Text(str(op.get("parent", ""))))
        table.add_row(*cells)
    return table


def summary(op: Json) -> Text:
    """One line on how an operation ended (or stands)."""
    text = Text(f"{op.get('kind', '')} {op.get('id', '')} ")
    text.append_text(state_text(op))
    took = elapsed(op)
    if took is not None:
        text.append(f" after {took}")
    if op.get("cancelOutcome"):
        text.append(f", cancel outcome {op['cancelOutcome']}")
    error = op.get("error")
    if op.get("state") == "FAILED" and isinstance(error, dict):
        text.append(f": {error_line(error)}")
    return text


def elapsed(op: Json) -> str | None:
    start, end = _parse_time(op.get("startTime")), _parse_time(op.get("endTime"))
    if start is None or end is None:
        return None
    return _duration((end - start).total_seconds())


class _EtaColumn(ProgressColumn):
    """Counts down to the handler's estimated completion time between updates."""

    def render(self, task: Task) -> Text:
        return Text(_until(task.fields.get("eta")) or "", style="progress.remaining")


def progress_bar(console: Console) -> Progress:
    """A bar with state, percent, phase and a live ETA; one task, fed by `progress_update`."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(complete_style="cyan", finished_style="green"),
        TaskProgressColumn(),
        TextColumn("{task.fields[phase]}", markup=False),
        _EtaColumn(),
        console=console,
        transient=False,
    )


def progress_update(op: Json) -> Json:
    """The task fields of `progress_bar` for an operation as it is now."""
    return {
        "completed": _percent(op),
        "description": state_text(op).markup,
        "phase": str(op.get("progress", {}).get("phase") or ""),
        "eta": None if op.get("done") else op.get("progress", {}).get("estimatedCompletionTime"),
    }


def progress_line(op: Json) -> str:
    """The bar as one plain line, for output that is not a terminal."""
    progress = op.get("progress", {})
    parts = [state_text(op).plain, f"{_percent(op):.0f}%", str(progress.get("phase") or "")]
    eta = None if op.get("done") else _until(progress.get("estimatedCompletionTime"))
    return " ".join(part for part in [*parts, eta or ""] if part)


async def live_watch(console: Console, updates: AsyncIterator[Json]) -> Json | None:
    """Show a progress bar with state, phase and ETA until `updates` ends; the last operation."""
    last: Json | None = None
    progress = progress_bar(console)
    with progress:
        task = progress.add_task("", total=100.0, phase="", eta=None)
        async for op in updates:
            last = op
            progress.update(task, **progress_update(op))
    if last is not None:
        console.print(summary(last), soft_wrap=True)
    return last


DM_STATES = {
    "PENDING": (0, "PENDING"),
    "RUNNING": (1, "IN_PROGRESS"),
    "SUCCEEDED": (2, "COMPLETED"),
    "FAILED": (3, "FAILED"),
    "CANCELLED": (5, "CANCELLED"),
}
"""Azure SQL's sys.dm_operation_status state codes and names; a running operation whose cancel
was requested is 4, CANCEL_IN_PROGRESS."""
DM_STATE_STYLES = {
    "PENDING": "yellow",
    "IN_PROGRESS": "cyan",
    "COMPLETED": "green",
    "FAILED": "red",
    "CANCEL_IN_PROGRESS": "magenta",
    "CANCELLED": "magenta",
}
_DATABASE_TARGET = re.compile(r"servers/([^/]+)/databases/(.+)")


def dm_row(op: Json) -> Json:
    """One row of the store's `dm_operation_status` view, column for column, computed from an
    operation's native JSON by the mapping the view's migration uses; times are RFC 3339 UTC."""
    # Any other state is 5, as in the view's CASE ... ELSE.
    state, state_desc = DM_STATES.get(str(op.get("state")), (5, "CANCELLED"))
    if state == 1 and op.get("cancelRequested"):
        state, state_desc = 4, "CANCEL_IN_PROGRESS"
    target = op.get("target")
    database = _DATABASE_TARGET.fullmatch(target) if isinstance(target, str) else None
    error: Json = op["error"] if isinstance(op.get("error"), dict) else {}
    return {
        "session_activity_id": op.get("id"),
        "resource_type": 0,
        "resource_type_desc": "Database",
        "major_resource_id": database[2] if database else (target or ""),
        "minor_resource_id": database[1] if database else "",
        "operation": op.get("title") or op.get("kind"),
        "state": state,
        "state_desc": state_desc,
        "percent_complete": 100 if state == 2 else int(_percent(op)),
        "error_code": error.get("code") or 0,
        "error_desc": error.get("message"),
        "error_severity": error.get("severity") or 0,
        "error_state": 0,
        "start_time": op.get("createTime"),
        "last_modify_time": op.get("updateTime"),
        "phase_code": None,
        "phase_desc": op.get("progress", {}).get("phase"),
        "phase_info": None,
    }


def dm_table(rows: list[Json], *, width: int = 80) -> Table:
    """`dm_operation_status` rows under short headers: the id, what, where, state and percent
    always; the state code, server, error and times only when there is room (`--json` has all)."""
    wide = width >= 120
    table = Table(
        show_edge=False, pad_edge=False, box=None, header_style="bold", collapse_padding=True
    )
    table.add_column("session_activity_id", no_wrap=True, min_width=36)
    if wide:
        table.add_column("state", justify="right", no_wrap=True)
    table.add_column("state_desc", no_wrap=True, min_width=18)  # CANCEL_IN_PROGRESS
    table.add_column("percent" if wide else "%", justify="right", no_wrap=True, min_width=4)
    table.add_column("operation", no_wrap=True, overflow="ellipsis", ratio=1, min_width=8)
    table.add_column("database", no_wrap=True, overflow="ellipsis", ratio=1, min_width=8)
    if wide:
        table.add_column("server", no_wrap=True, overflow="ellipsis")
        table.add_column("error", no_wrap=True)
        table.add_column("start_time", no_wrap=True)
        table.add_column("last_modify_time", no_wrap=True)
        table.add_column("error_desc", no_wrap=True, overflow="ellipsis", ratio=1)
    for row in rows:
        desc = str(row["state_desc"])
        cells: list[Text | str] = [Text(str(row["session_activity_id"]))]
        if wide:
            cells.append(str(row["state"]))
        cells += [
            Text(desc, style=DM_STATE_STYLES.get(desc, "")),
            f"{row['percent_complete']}%",
            Text(str(row["operation"] or "")),
            Text(str(row["major_resource_id"])),
        ]
        if wide:
            cells += [
                Text(str(row["minor_resource_id"])),
                str(row["error_code"]) if row["error_code"] else "",
                short_time(row["start_time"]),
                short_time(row["last_modify_time"]),
                Text(" ".join(str(row["error_desc"] or "").split())),
            ]
        table.add_row(*cells)
    return table
