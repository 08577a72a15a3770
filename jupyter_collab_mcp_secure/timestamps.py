"""One way to write a moment: RFC 3339 in UTC ending in `Z`, in every record, result and report of this package."""

from __future__ import annotations

from datetime import datetime, timezone


def rfc3339(moment: datetime | float | None = None, *, millis: bool = False) -> str:
    """`moment` (a UTC datetime or POSIX seconds; now when None), to milliseconds or to microseconds as recorded."""
    if moment is None:
        moment = datetime.now(timezone.utc)
    elif not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    return moment.isoformat(timespec="milliseconds" if millis else "auto").replace("+00:00", "Z")


def utc_now() -> str:
    """Now, to the millisecond: the precision of activity and presence times."""
    return rfc3339(millis=True)
