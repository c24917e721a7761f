"""Every Python example of the product description, run as written against a
real server. Only addresses change: ``localhost:8080`` and ``cache-service:8080``
become the test server, ``cache1.example.com`` a local address where nothing
listens and ``cache2.example.com`` the test server (so the failover example
really fails over). What the examples leave to the reader (a ``database``, a
``db``) is supplied by the test."""

from __future__ import annotations

import asyncio
import contextlib
import io
import textwrap
from typing import Any

import pytest

from cachegrid.testing import ServerProcess as Server

ASYNC_EXAMPLE = """
import asyncio
from cachegrid.client import CacheGridClient

async def main():
    # Initialize client
    async with CacheGridClient(['localhost:8080']) as client:
        
        # Basic operations
        await client.set('user:123', {'name': 'Alice', 'age': 30})
        user = await client.get('user:123')
        print(f"User: {user}")
        
        # TTL operations
        await client.set('session:abc', {'token': 'xyz'}, ttl=3600)
        
        # Batch operations
        await client.set_multi({
            'product:1': {'name': 'Widget', 'price': 19.99},
            'product:2': {'name': 'Gadget', 'price': 29.99}
        })
        
        products = await client.get_multi(['product:1', 'product:2'])
        print(f"Products: {products}")
        
        # Administrative operations
        stats = await client.stats()
        print(f"Cache size: {stats['current_size']}")

if __name__ == "__main__":
    asyncio.run(main())
"""

SYNC_EXAMPLE = """
from cachegrid.client import SyncCacheGridClient

# For non-async applications
with SyncCacheGridClient(['localhost:8080']) as client:
    client.set('config:app_name', 'MyApp')
    app_name = client.get('config:app_name')
    print(f"App name: {app_name}")
"""

FAILOVER_EXAMPLE = """
async with CacheGridClient(
    hosts=['cache1.example.com', 'cache2.example.com'],
    timeout=5.0,
    max_retries=3
) as client:
    # Client automatically handles failover between hosts
    result = await client.get('my_key')
"""

FLASK_EXAMPLE = """
from flask import Flask, request, jsonify
from cachegrid.client import SyncCacheGridClient

app = Flask(__name__)
cache = SyncCacheGridClient(['localhost:8080'])

@app.route('/users/<user_id>')
def get_user(user_id):
    with cache:
        # Try cache first
        user = cache.get(f'user:{user_id}')
        if user:
            return jsonify(user)
        
        # Fetch from database
        user = database.get_user(user_id)
        if user:
            # Cache for 1 hour
            cache.set(f'user:{user_id}', user, ttl=3600)
        
        return jsonify(user)
"""

SERVICE_EXAMPLE = """
# Order Service
class OrderService:
    def __init__(self):
        self.cache = CacheGridClient(['cache-service:8080'])
    
    async def get_user_orders(self, user_id):
        cache_key = f'orders:{user_id}'
        
        # Check cache
        orders = await self.cache.get(cache_key)
        if orders:
            return orders
        
        # Fetch from database
        orders = await self.db.get_user_orders(user_id)
        
        # Cache for 30 minutes
        await self.cache.set(cache_key, orders, ttl=1800)
        
        return orders
"""


def localized(example: str, server: Server, dead: str) -> str:
    live = f"{server.host}:{server.port}"
    return (
        example.replace("localhost:8080", live)
        .replace("cache-service:8080", live)
        .replace("cache1.example.com", dead)
        .replace("cache2.example.com", live)
    )


def run(source: str, namespace: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    namespace = {"__name__": "__main__", **(namespace or {})}
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(source, "<example>", "exec"), namespace)
    return namespace, output.getvalue()


def test_async_client_example(live: Server, dead_host: str) -> None:
    _, output = run(localized(ASYNC_EXAMPLE, live, dead_host))
    assert "User: {'name': 'Alice', 'age': 30}" in output
    assert (
        "Products: {'product:1': {'name': 'Widget', 'price': 19.99}, 'product:2': {'name': 'Gadget', 'price': 29.99}}"
    ) in output
    assert "Cache size: " in output and int(output.split("Cache size: ")[1]) >= 4


def test_sync_client_example(live: Server, dead_host: str) -> None:
    _, output = run(localized(SYNC_EXAMPLE, live, dead_host))
    assert output == "App name: MyApp\n"


def test_failover_example(live: Server, dead_host: str) -> None:
    live_client = f"{live.host}:{live.port}"
    from cachegrid.client import SyncCacheGridClient

    SyncCacheGridClient([live_client]).set("my_key", {"found": True})
    source = (
        "from cachegrid.client import CacheGridClient\n\nasync def example():\n"
        + textwrap.indent(localized(FAILOVER_EXAMPLE, live, dead_host), "    ")
        + "    return result\n"
    )
    namespace, _ = run(source)
    assert asyncio.run(namespace["example"]()) == {"found": True}


def test_flask_example(live: Server, dead_host: str) -> None:
    pytest.importorskip("flask")

    class Database:
        calls = 0

        def get_user(self, user_id: str) -> dict[str, Any]:
            Database.calls += 1
            return {"id": user_id, "name": "Alice"}

    namespace, _ = run(localized(FLASK_EXAMPLE, live, dead_host), {"database": Database()})
    web = namespace["app"].test_client()
    first = web.get("/users/42")
    second = web.get("/users/42")  # from the cache this time
    assert first.get_json() == second.get_json() == {"id": "42", "name": "Alice"}
    assert Database.calls == 1
    assert namespace["cache"]._session is None  # each request's `with cache:` closed it again


def test_service_example_without_a_context_manager(live: Server, dead_host: str) -> None:
    source = "from cachegrid.client import CacheGridClient\n" + localized(SERVICE_EXAMPLE, live, dead_host)
    namespace, _ = run(source)

    class Db:
        calls = 0

        async def get_user_orders(self, user_id: str) -> list[dict[str, Any]]:
            Db.calls += 1
            return [{"order": 1, "user": user_id}]

    service = namespace["OrderService"]()
    service.db = Db()

    async def twice() -> tuple[Any, Any]:
        return await service.get_user_orders("u1"), await service.get_user_orders("u1")

    first, second = asyncio.run(twice())
    assert first == second == [{"order": 1, "user": "u1"}]
    assert Db.calls == 1
