"""An nginx configuration for a CacheGrid cluster, for HTTP clients that are
not CacheGrid's own.

nginx routes every request for one key (``/cache/{key}`` and its ``/ttl``,
``/incr`` and ``/decr``) with ``hash $cachegrid_key consistent``: the key is
taken from the raw request URI (percent-encoded, as the client sent it), so
the Python client with ``ring="nginx"`` and the same ``HOST:PORT`` strings
places every key on the same node. A node that fails (connection error,
timeout, a 500/502/503/504) is marked down for ``fail_timeout`` and the
request goes to the next node of the ring (``proxy_next_upstream``), as the
client's cool-down does; a POST (incr/decr) is not retried, as nginx never
retries a non-idempotent request once sent. Connections to the nodes are
kept alive.

What cannot be answered by one node is refused with 421 and a JSON body
that says why and points to the client: the batch endpoints (their keys
live on several nodes), ``DELETE /cache`` (clear would empty one node only)
and ``/admin/keys`` (one node's keys are not the cluster's). Everything else
(``/health``, ``/stats``, ``/metrics``, ``/test/load``, ``/docs``) goes to
one node, round robin, and the answer names it in ``X-CacheGrid-Node``
(which every routed answer carries).

``render_single`` is the front of one server: every request goes to it
(batches, clear and the key listing too: one node's answer is the whole
cache's), ``/events`` unbuffered with a long read timeout so that events
go out as they come.

With ``Tls`` (a certificate chain and its key) either front listens with
TLS instead (``_tls_lines``): TLS 1.2 and 1.3 only, forward-secret AEAD
suites for 1.2 (1.3 has only such), a session cache shared by nginx's
workers so that a client coming back resumes without a full handshake, no
session tickets (a plain nginx never rotates their key), and client
connections kept alive long, so the handshake is paid once per connection.
The nodes are reached in plain HTTP/1.1 over kept-alive connections as
without TLS: meinheld serves no TLS, and the hop to the nodes is meant to
stay on a trusted network (docs/tls.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

NODE_HEADER = "X-CacheGrid-Node"
REFUSED_STATUS = 421
_NODE = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})(?:=(?P<weight>\d+))?$")

CLIENT_POINTER = "use CacheGrid's Python client with every node (SyncCacheGridClient(hosts=[...], ring='nginx'))"
# Every request whose answer is the whole cluster's: nginx can send it to one
# node only, so it is refused rather than answered for one node as if for all
# (kind: error code, why, what else the caller can do).
REFUSALS = {
    "batch": (
        "cross_node_batch",
        "a batch holds keys of several nodes, which nginx cannot split",
        f"{CLIENT_POINTER}, or one request per key",
    ),
    "clear": ("cross_node_clear", "clearing through nginx would empty one node only", f"{CLIENT_POINTER}"),
    "keys": ("cross_node_keys", "one node's keys are not the cluster's", CLIENT_POINTER),
    "tags": (
        "cross_node_tags",
        "a tag's entries live on several nodes: invalidating it through nginx would reach one",
        CLIENT_POINTER,
    ),
    "pattern": (
        "cross_node_pattern",
        "the keys a pattern matches live on several nodes: deleting them through nginx would reach one",
        CLIENT_POINTER,
    ),
}


@dataclass(frozen=True)
class Tls:
    """The PEM files nginx serves TLS with (absolute paths: nginx reads them)."""

    cert: Path  # the server's certificate, then any intermediate ones
    key: Path


# TLS 1.2's suites with forward secrecy and authenticated encryption, ECDSA
# and RSA certificates alike, in no preferred order (the client's choice
# wins: every one is strong, and a client without AES instructions picks
# ChaCha20). TLS 1.3's suites are OpenSSL's defaults, all of that kind.
TLS12_CIPHERS = ":".join(
    f"ECDHE-{kind}-{suite}"
    for suite in ("AES128-GCM-SHA256", "AES256-GCM-SHA384", "CHACHA20-POLY1305")
    for kind in ("ECDSA", "RSA")
)


@dataclass(frozen=True)
class Node:
    server: str  # HOST:PORT, exactly as the client's ring="nginx" is given it
    weight: int = 1


def parse_node(text: str) -> Node:
    """``HOST:PORT`` or ``HOST:PORT=WEIGHT``; ValueError naming the problem."""
    found = _NODE.match(text.strip())
    if not found:
        raise ValueError(f"{text!r}: give HOST:PORT or HOST:PORT=WEIGHT")
    port = int(found["port"])
    if not 0 < port < 65536:
        raise ValueError(f"{text!r}: the port must be 1-65535")
    weight = int(found["weight"] or 1)
    if weight < 1:
        raise ValueError(f"{text!r}: the weight must be 1 or more")
    return Node(f"{found['host']}:{port}", weight)


def _refusal(kind: str) -> str:
    code, why, instead = REFUSALS[kind]
    body = json.dumps({"error": code, "message": f"{why}: {instead}"}, separators=(",", ":"))
    return body.replace("\\", "\\\\").replace("'", "\\'")


def _upstream_servers(nodes: list[Node], fail_timeout: int) -> tuple[str, str]:
    """The ``server`` lines of the keyed upstream (with weights) and of the plain one."""
    servers = "\n".join(
        f"        server {node.server}"
        + (f" weight={node.weight}" if node.weight != 1 else "")
        + f" max_fails=1 fail_timeout={fail_timeout}s;"
        for node in nodes
    )
    plain = "\n".join(f"        server {node.server} max_fails=1 fail_timeout={fail_timeout}s;" for node in nodes)
    return servers, plain


def _runtime_lines(runtime_dir: Path | None) -> tuple[str, str, str]:
    """The pid/error log, temporary paths and access log lines under
    ``runtime_dir`` (none: nginx's compiled-in places)."""
    if runtime_dir is None:
        return "", "", ""
    root = Path(runtime_dir)
    runtime = f"pid {root / 'nginx.pid'};\nerror_log {root / 'error.log'} warn;\n"
    temps = "".join(
        f"    {name}_temp_path {root / name};\n" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return runtime, temps, f"    access_log {root / 'access.log'};\n"


def render(
    nodes: list[Node],
    listen: str = "127.0.0.1:8080",
    runtime_dir: Path | None = None,
    fail_timeout: int = 10,
    connect_timeout: float = 1.0,
    read_timeout: float = 5.0,
    tls: Tls | None = None,
) -> str:
    """The nginx.conf text. ``runtime_dir``: where the pid file, logs and
    temporary files go (nginx's compiled-in places when None); ``tls``: listen
    with TLS (``_tls_lines``)."""
    if not nodes:
        raise ValueError("give at least one node")
    if len({node.server for node in nodes}) != len(nodes):
        raise ValueError("a node is given twice")
    servers, plain = _upstream_servers(nodes, fail_timeout)
    runtime, temps, access = _runtime_lines(runtime_dir)
    tries = len(nodes)
    return f"""# CacheGrid cluster behind nginx: written by `cachegrid cluster nginx-config`.
# Single-key requests go to the key's node (hash ... consistent, the ring of
# the Python client's ring="nginx"); see docs/cluster.md for what each
# endpoint does through nginx.
{runtime}worker_processes auto;

events {{
    worker_connections 1024;
}}

http {{
{access}{temps}    # The key as the client sent it, percent-encoded: /cache/{{key}}[/ttl|/incr|/decr][?...]
    map $request_uri $cachegrid_key {{
        "~^/cache/(?<cachegrid_segment>[^/?]+)" $cachegrid_segment;
        default "";
    }}

    upstream cachegrid_keys {{
        hash $cachegrid_key consistent;
{servers}
        keepalive 32;
    }}

    upstream cachegrid_any {{
{plain}
        keepalive 8;
    }}

    server {{
{_server_lines(listen, tls, connect_timeout, read_timeout)}
        # As the Python client: a connection error, a timeout or a 5xx but 507
        # moves on to the next node; a POST already sent is never repeated.
        proxy_next_upstream error timeout http_500 http_502 http_503 http_504;
        proxy_next_upstream_tries {tries};
        client_max_body_size 16m;
        default_type application/json;
        add_header {NODE_HEADER} $upstream_addr always;

{_locations()}
    }}
}}
"""


def _locations() -> str:
    """The server's locations: one key's requests to its node, what nginx
    cannot route refused (421: batches, clear, key listing, tag invalidation,
    delete by pattern), everything else to any node."""
    return f"""        location ^~ /cache/batch/ {{
            return {REFUSED_STATUS} '{_refusal("batch")}';
        }}

        location = /cache {{
            return {REFUSED_STATUS} '{_refusal("clear")}';
        }}

        location /cache/ {{
            proxy_pass http://cachegrid_keys;
        }}

        location = /admin/keys {{
            return {REFUSED_STATUS} '{_refusal("keys")}';
        }}

        location ^~ /tags/ {{
            return {REFUSED_STATUS} '{_refusal("tags")}';
        }}

        location ^~ /admin/delete-pattern {{
            return {REFUSED_STATUS} '{_refusal("pattern")}';
        }}

        location / {{
            proxy_pass http://cachegrid_any;
        }}"""


def _server_lines(listen: str, tls: Tls | None, connect_timeout: float, read_timeout: float) -> str:
    """The lines every generated server block opens with: its listener, and
    HTTP/1.1 keep-alive to the nodes with the timeouts given."""
    return f"""{_listen_lines(listen, tls)}
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_connect_timeout {connect_timeout:g}s;
        proxy_read_timeout {read_timeout:g}s;
        proxy_send_timeout {read_timeout:g}s;"""


def _listen_lines(listen: str, tls: Tls | None) -> str:
    """The server's ``listen`` line, and with TLS its settings (module docstring)."""
    if tls is None:
        return f"        listen {listen};\n"
    return f"""        listen {listen} ssl;
        ssl_certificate {tls.cert};
        ssl_certificate_key {tls.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {TLS12_CIPHERS};
        ssl_prefer_server_ciphers off;
        # Resumption without a full handshake, shared by the workers (~40,000 sessions).
        ssl_session_cache shared:cachegrid_tls:10m;
        ssl_session_timeout 1h;
        # Tickets are encrypted with a key a plain nginx never rotates: off.
        ssl_session_tickets off;
        # A client keeps its connection, and pays the handshake once.
        keepalive_timeout 75s;
        keepalive_requests 100000;
"""


def render_single(
    node: Node,
    listen: str = "127.0.0.1:8080",
    runtime_dir: Path | None = None,
    tls: Tls | None = None,
    connect_timeout: float = 1.0,
    read_timeout: float = 60.0,
) -> str:
    """The nginx.conf text of a front for one server (module docstring)."""
    runtime, temps, access = _runtime_lines(runtime_dir)
    return f"""# One CacheGrid server behind nginx: written by `cachegrid nginx-config`.
# Every request goes to the server; see docs/tls.md.
{runtime}worker_processes auto;

events {{
    worker_connections 1024;
}}

http {{
{access}{temps}    upstream cachegrid {{
        server {node.server};
        keepalive 32;
    }}

    server {{
{_server_lines(listen, tls, connect_timeout, read_timeout)}
        client_max_body_size 16m;
        default_type application/json;

        location = /events {{
            proxy_pass http://cachegrid;
            # Each event goes out as it comes; a quiet stream stays open.
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}

        location / {{
            proxy_pass http://cachegrid;
        }}
    }}
}}
"""
