"""Looking at live processes through /proc (Linux), for tests of child process handling."""

from __future__ import annotations

from pathlib import Path


def _stat_fields(pid_dir: Path) -> list[str] | None:
    """The fields of /proc/{pid}/stat after the command name: state, ppid, pgrp, ..."""
    try:
        text = (pid_dir / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def live_in_group(pgid: int) -> list[int]:
    """The processes of a process group that still run (a zombie, killed but not yet reaped
    by its parent or by init, does not count)."""
    found = []
    for pid_dir in Path("/proc").glob("[0-9]*"):
        fields = _stat_fields(pid_dir)
        if fields is not None and fields[2] == str(pgid) and fields[0] != "Z":
            found.append(int(pid_dir.name))
    return found


def processes_mentioning(marker: str) -> list[int]:
    """Live processes whose command line contains marker (a zombie's is empty)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found
