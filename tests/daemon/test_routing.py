"""KeyRouter learns its key routes and reserved paths from the routes added."""

from __future__ import annotations

import falcon
import pytest
from falcon import testing

from cachegrid.daemon.routing import KeyRouter


class Echo:
    """A resource that answers which responder ran, and for which key."""

    def __init__(self, name: str) -> None:
        self.name = name

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str | None = None) -> None:
        resp.media = {"resource": self.name, "key": key}

    def on_get_tags(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        resp.media = {"resource": f"{self.name} tags", "key": key}


def client() -> testing.TestClient:
    app = falcon.App(router=KeyRouter())
    items = Echo("item")
    app.add_route("/cache/{key}", items)
    app.add_route("/cache/{key}/tags", items, suffix="tags")
    app.add_route("/cache/reports/daily", Echo("daily report"))
    return testing.TestClient(app)


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/cache/reports/daily", {"resource": "daily report", "key": None}),  # a literal route: reserved
        ("/cache/reports%2Fdaily", {"resource": "item", "key": "reports/daily"}),
        ("/cache/reports/weekly", {"resource": "item", "key": "reports/weekly"}),
        ("/cache/a/tags", {"resource": "item tags", "key": "a"}),  # an action learnt from its route
        ("/cache/a/ttl", {"resource": "item", "key": "a/ttl"}),  # no such route was added here
    ],
)
def test_routes_under_the_prefix_come_from_the_app(path: str, answer: dict[str, str | None]) -> None:
    assert client().simulate_get(path).json == answer


@pytest.mark.parametrize("template", ["/cache/{key}/{field}", "/cache/{other}", "/cache/_"])
def test_routes_the_router_cannot_serve_are_refused_when_added(template: str) -> None:
    with pytest.raises(ValueError):
        falcon.App(router=KeyRouter()).add_route(template, Echo("x"))
