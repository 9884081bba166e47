"""Timestamps: always timezone-aware UTC datetimes, stored as whole microseconds since the epoch.

Pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def parse_timestamp(text: str) -> datetime:
    """Parse RFC 3339 (`2026-11-21T10:00:00Z`, with an offset, or fractional seconds) to UTC."""
    value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if value.tzinfo is None:
        raise ValueError("timestamp needs a time zone (Z or an offset)")
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, as every wire format here expects."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
