"""The ``events`` family of the OpenAPI document: ``GET /events``, the
change stream as Server-Sent Events (daemon/events.py, docs/events.md).

OpenAPI describes a stream only as a media type and its prose; the event
format is in the description. The operation never ends, so the document's
fuzzing leaves it out (tests/daemon/test_openapi_fuzz.py).
"""

from __future__ import annotations

from typing import Any

from .parts import Common, error, grouped, header, operation, query

GROUP = {"name": "events", "description": "The change stream (Server-Sent Events)."}

FORMAT = (
    "Every change to a key is one event, sent after the change is applied:\n\n"
    "```\nid: <epoch>-<seq>\nevent: set|delete|expire|evict|clear|invalidate|reset\n"
    'data: {"key": "<key>", "time": <unix time>}\n```\n\n'
    '`data` is `{"key": null}` for `clear` and `reset` (everything), `{"tag": "<tag>"}` for '
    "`invalidate`; every change's `data` also has `time`, when the change was made. "
    "A comment line `: heartbeat` comes when nothing else was sent for a while. "
    "A stream starts with `reset` unless `Last-Event-ID` names an event still in the ring buffer; "
    "a subscriber that falls too far behind gets `reset` and is disconnected."
)


def paths(common: Common) -> dict[str, Any]:
    """The family's one path."""
    settings = common.settings
    prefix = query(
        "prefix",
        {"type": "string", "minLength": 1, "maxLength": settings.max_key_length},
        "Only events of keys starting with this (repeatable; clear, reset and invalidate always come).",
    )
    prefix["style"], prefix["explode"] = "form", True
    stream = {"description": FORMAT, "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    return grouped(
        {
            "/events": {
                "get": operation(
                    "Stream every change to the cache (Server-Sent Events; never ends).",
                    {
                        "200": stream,
                        "400": error("A prefix that is empty or longer than a key."),
                        "503": error(f"Too many streams open (at most {settings.events_max_subscribers})."),
                    },
                    [prefix, header("Last-Event-ID", "The id of the last event received: resume after it.")],
                )
            }
        },
        "events",
    )
