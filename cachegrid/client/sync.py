"""The synchronous client, over a pooled ``requests.Session``.

Use it as a context manager or not at all; both work, and so does entering
the same client again and again (one client made at import time, ``with
client:`` around each request of a web app): the session is opened on first
use and closed when the last ``with`` block that is still open ends.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterable, Iterator

import requests

from .protocol import Api, Call, MaybeSent, NotSent


class SyncCacheGridClient(Api):
    """A blocking CacheGrid client with failover between ``hosts``."""

    def __init__(self, hosts: Iterable[str] | str = ("localhost:8080",), timeout: float = 5.0,
                 max_retries: int = 3, auth_token: str | None = None, cooldown: float = 30.0) -> None:
        super().__init__(hosts, timeout, max_retries, auth_token, cooldown)
        self._session: requests.Session | None = None
        self._entered = 0
        self._lock = threading.Lock()

    def _open(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                session = requests.Session()
                session.headers.update(self._headers())
                self._session = session
            return self._session

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def __enter__(self) -> SyncCacheGridClient:
        with self._lock:
            self._entered += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._entered -= 1
            last = self._entered == 0
        if last:
            self.close()

    def _send(self, host: str, call: Call) -> tuple[int, bytes]:
        session = self._open()
        try:
            response = session.request(call.method, host + call.path, params=call.params, data=call.body,
                                       headers=call.headers, timeout=self.timeout)
            return response.status_code, response.content
        except (requests.ConnectTimeout, requests.exceptions.InvalidURL) as error:
            raise NotSent(str(error)) from None
        except requests.ConnectionError as error:
            if "NewConnectionError" in repr(error) or "Connection refused" in str(error):
                raise NotSent(str(error)) from None
            raise MaybeSent(str(error)) from None
        except requests.Timeout as error:
            raise MaybeSent(str(error)) from None

    def _call(self, call: Call) -> Any:
        plan = self.pool.run(call)
        host, wait = next(plan)
        while True:
            if wait:
                time.sleep(wait)
            try:
                outcome: Any = self._send(host, call)
            except (NotSent, MaybeSent) as error:
                outcome = error
            try:
                host, wait = plan.send(outcome)
            except StopIteration as done:
                return done.value

    def iter_keys(self, pattern: str | None = None, page_size: int = 1000) -> Iterator[str]:
        """Every live key matching ``pattern``, page by page through the cursor."""
        page = self.keys(pattern, page_size)
        yield from page["keys"]
        while page["cursor"]:
            page = self.keys(pattern, page_size, page["cursor"])
            yield from page["keys"]
