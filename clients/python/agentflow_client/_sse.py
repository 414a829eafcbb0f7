"""Server-Sent Events, read line by line (the WHATWG event-stream format)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional


@dataclass(frozen=True)
class Event:
    """One event of a job's stream.

    ``name`` is ``snapshot`` (``data`` = ``{"job", "attempts"}``), ``attempt``, ``budget`` or
    ``job`` (``data`` = a job event with ``seq``, ``kind``, ``attempt``/``budget``/``state``), or
    ``end`` (the job has ended). ``id`` is the event's sequence number (``None`` for snapshot
    and end): pass it as ``last_event_id`` to resume after it.
    """

    name: str
    data: Any
    id: Optional[int] = None


def parse(lines: Iterable[str]) -> Iterator[Event]:
    """Events from the stream's lines (without their line ends); comments and retry are skipped."""
    name, ident, data = "message", None, []
    for line in lines:
        if line == "":
            if data:
                text = "\n".join(data)
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = text
                yield Event(name, payload, ident)
            name, ident, data = "message", None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            ident = int(value) if value.isdigit() else None
