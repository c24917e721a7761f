"""The values the compression benchmarks measure: the issue's 20 KB JSON list
of 100 user objects, and a few other shapes a cache holds (an HTML fragment,
a large API response, a small JSON document, bytes that do not compress).

Deterministic (a seeded generator), so every run and every codec sees the
same bytes.
"""

from __future__ import annotations

import base64
import json
import random

FIRST = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj"]
LAST = ["Smith", "Jones", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Moore", "Taylor", "Clark"]
CITIES = ["Lisbon", "Berlin", "Osaka", "Lima", "Austin", "Nairobi", "Oslo", "Hanoi"]


def user(rng: random.Random, number: int) -> dict[str, object]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {
        "id": number,
        "username": f"{first.lower()}.{last.lower()}{rng.randrange(1000)}",
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}@example.com",
        "age": rng.randrange(18, 90),
        "active": rng.random() < 0.8,
        "city": rng.choice(CITIES),
        "created_at": f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:00:00Z",
        "roles": rng.sample(["admin", "editor", "viewer", "billing", "support"], rng.randrange(1, 3)),
        "score": round(rng.random() * 1000, 2),
    }


def users_json(count: int = 100, seed: int = 29) -> bytes:
    """A JSON list of ``count`` user objects: about 20 KB for 100."""
    rng = random.Random(seed)
    return json.dumps([user(rng, number) for number in range(count)], separators=(",", ":")).encode()


def html_fragment(seed: int = 29) -> bytes:
    """A rendered list of 100 products, as a page cache holds one (about 30 KB)."""
    rng = random.Random(seed)
    rows = []
    for number in range(100):
        price = rng.randrange(100, 100000) / 100
        rows.append(
            f'<li class="product" data-id="{number}"><a href="/p/{number}">Product {number}</a>'
            f'<span class="price">{price:.2f} EUR</span><span class="stock">{rng.randrange(50)} left</span></li>'
        )
    return ('<ul class="products">' + "".join(rows) + "</ul>").encode()


def random_bytes(size: int = 20_000, seed: int = 29) -> bytes:
    """Bytes that do not compress (a JPEG, an encrypted token): base64 of random bytes, as JSON."""
    rng = random.Random(seed)
    return json.dumps(base64.b64encode(rng.randbytes(size * 3 // 4)).decode()).encode()


SHAPES = {
    "users, 100 (the issue's)": users_json,
    "users, 1,000 (an API page)": lambda: users_json(1000),
    "users, 8 (a small document)": lambda: users_json(8),
    "HTML fragment": html_fragment,
    "random (base64)": random_bytes,
}
