"""The product description's Python examples in one script: the async client
(set, get, a TTL, a batch, stats) and the synchronous one.

    make serve                                              # CacheGrid on 127.0.0.1:8080 (another terminal)
    cd examples/python && ../../.venv/bin/python basic_usage.py

CACHEGRID_URL names another server (several, separated by commas: a
cluster) and CACHEGRID_AUTH_TOKEN its token, as for the command line.
"""

from __future__ import annotations

import asyncio
import os

from cachegrid.client import CacheGridClient, SyncCacheGridClient

HOSTS = os.environ.get("CACHEGRID_URL", "localhost:8080").split(",")
TOKEN = os.environ.get("CACHEGRID_AUTH_TOKEN")


async def main() -> None:
    async with CacheGridClient(HOSTS, auth_token=TOKEN) as client:
        # Basic operations
        await client.set("user:123", {"name": "Alice", "age": 30})
        user = await client.get("user:123")
        print(f"User: {user}")

        # TTL operations
        await client.set("session:abc", {"token": "xyz"}, ttl=3600)
        print(f"Session TTL: {await client.ttl('session:abc'):.0f} s")

        # Batch operations
        await client.set_multi(
            {
                "product:1": {"name": "Widget", "price": 19.99},
                "product:2": {"name": "Gadget", "price": 29.99},
            }
        )
        products = await client.get_multi(["product:1", "product:2"])
        print(f"Products: {products}")

        # Administrative operations
        stats = await client.stats()
        print(f"Cache size: {stats['current_size']}")


def sync_main() -> None:
    # For non-async applications
    with SyncCacheGridClient(HOSTS, auth_token=TOKEN) as client:
        client.set("config:app_name", "MyApp")
        app_name = client.get("config:app_name")
        print(f"App name: {app_name}")


if __name__ == "__main__":
    asyncio.run(main())
    sync_main()
