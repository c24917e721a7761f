"""TLS at the front (docs/tls.md): a real server behind a real nginx running
the configuration ``cachegrid nginx-config --tls-cert --tls-key`` prints,
with a certificate of a CA made here by the ``openssl`` command (in the
test's directory, valid for two days, for 127.0.0.1 and localhost).

The clients (sync, asyncio, the CLI, ``cachegrid events``, the Flask
backend) talk to it over https with the certificate verified against that
CA; given another CA, or none (the system's bundle, which does not hold
it), each fails at once with ``TLSError`` naming TLS certificate
verification, never as a server that is down. The cluster configuration
listens with TLS the same way. nginx's pid, logs and temporary files stay in
the test's directory; skipped, saying why, without nginx or openssl.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cachegrid.cli.main import app
from cachegrid.cli.status import ExitCode
from cachegrid.client import CacheGridClient, SyncCacheGridClient, TLSError
from cachegrid.contrib.flask import CacheGridCache
from cachegrid.testing import CLI, ServerProcess
from tests.integration.test_cluster_nginx import NGINX, Front

OPENSSL = shutil.which("openssl")
pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
    pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed (apt-get install openssl)"),
]
TOKEN = "tls-test-token"


def openssl(*arguments: str, cwd: Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *arguments], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str) -> Path:
    """A self-signed CA (``name``.pem, ``name``.key) in ``directory``."""
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=CacheGrid test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return directory / f"{name}.pem"


def make_server_certificate(directory: Path, ca: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost signed by the CA ``ca``: (cert, key)."""
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n"
    )
    openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
        cwd=directory,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
        cwd=directory,
    )  # fmt: skip
    return directory / "server.pem", directory / "server.key"


class Setup:
    def __init__(self, directory: Path) -> None:
        self.ca = make_ca(directory, "ca")
        self.wrong_ca = make_ca(directory, "other-ca")
        self.cert, self.key = make_server_certificate(directory, "ca")
        self.server = ServerProcess(env={"CACHEGRID_AUTH_TOKEN": TOKEN})
        self.front: Front | None = None
        self.server.wait_healthy()
        command = ["nginx-config", "--tls-cert", str(self.cert), "--tls-key", str(self.key)]
        context = ssl.create_default_context(cafile=str(self.ca))
        self.front = Front([self.server], directory / "nginx", command, context)
        self.url = f"https://127.0.0.1:{self.front.port}"

    def stop(self) -> None:
        if self.front is not None:
            self.front.stop()
        self.server.kill()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("tls")
    (directory / "nginx").mkdir()
    setup = None
    try:
        setup = Setup(directory)
        yield setup
    finally:
        if setup is not None:
            setup.stop()


def test_the_sync_client_over_verified_tls(tls: Setup) -> None:
    with SyncCacheGridClient(tls.url, auth_token=TOKEN, ca_file=tls.ca) as client:
        assert client.set("tls:a", {"n": 1}) is True
        assert client.get("tls:a") == {"n": 1}
        assert client.set_multi({"tls:b": 2, "tls:c": b"\x00bytes"}) == 2  # batches: one node, nothing refused
        assert client.get_multi(["tls:a", "tls:b", "tls:c"]) == {"tls:a": {"n": 1}, "tls:b": 2, "tls:c": b"\x00bytes"}
        assert client.incr("tls:count") == 1 and client.incr("tls:count") == 2
        assert sorted(client.scan("tls:*")["keys"]) == ["tls:a", "tls:b", "tls:c", "tls:count"]
        assert client.stats()["current_size"] >= 4
        assert client.delete("tls:a") is True and client.get("tls:a") is None
    # The node behind it saw plain HTTP: the same entries.
    assert tls.server.request("GET", "/cache/tls:b", headers={"Authorization": f"Bearer {TOKEN}"})[2] == b"2"


def test_the_asyncio_client_over_verified_tls(tls: Setup) -> None:
    async def run() -> None:
        async with CacheGridClient([tls.url], auth_token=TOKEN, ca_file=str(tls.ca)) as client:
            assert await client.set("tls:async", [1, 2]) is True
            assert await client.get("tls:async") == [1, 2]
            assert await client.get_multi(["tls:async", "tls:none"]) == {"tls:async": [1, 2]}
            assert await client.delete("tls:async") is True

    asyncio.run(run())


def test_tls_1_2_is_served_and_1_3_is_chosen_when_both_can(tls: Setup) -> None:
    assert tls.front is not None
    for highest, expected in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.MAXIMUM_SUPPORTED, "TLSv1.3")):
        context = ssl.create_default_context(cafile=str(tls.ca))
        context.maximum_version = highest
        with (
            socket.create_connection(("127.0.0.1", tls.front.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped,
        ):
            assert wrapped.version() == expected


@pytest.mark.parametrize("which", ["wrong CA", "system bundle"])
def test_a_certificate_that_does_not_verify_fails_at_once_naming_tls(tls: Setup, which: str) -> None:
    options = {"ca_file": tls.wrong_ca} if which == "wrong CA" else {}
    with SyncCacheGridClient(tls.url, auth_token=TOKEN, max_retries=3, **options) as client:  # type: ignore[arg-type]
        transport = client._open()
        sends = []
        send = transport.send
        transport.send = lambda host, call: sends.append(call) or send(host, call)  # type: ignore[method-assign]
        with pytest.raises(TLSError) as raised:
            client.get("tls:b")
    assert len(sends) == 1  # not retried: a setting to fix, not an outage
    message = str(raised.value)
    assert message.startswith(f"TLS certificate verification failed for {tls.url}")
    assert "unable to get local issuer certificate" in message and "ca_file" in message
    assert raised.value.verification is True

    async def run() -> None:
        async with CacheGridClient(tls.url, auth_token=TOKEN, fail_open=True, **options) as client:  # type: ignore[arg-type]
            await client.get("tls:b")  # fail_open hides outages, not this

    with pytest.raises(TLSError, match="TLS certificate verification failed"):
        asyncio.run(run())


def test_a_ca_file_that_cannot_be_read_or_contradicts_verify_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ca_file .*no readable file"):
        SyncCacheGridClient("https://127.0.0.1:1", ca_file=tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="contradict"):
        SyncCacheGridClient("https://127.0.0.1:1", ca_file=__file__, verify=False)


def test_the_cli_over_tls_and_with_the_wrong_ca(tls: Setup) -> None:
    runner = CliRunner()
    base = ["--url", tls.url, "--token", TOKEN]
    done = runner.invoke(app, [*base, "--ca-file", str(tls.ca), "set", "tls:cli", '"v"'])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, [*base, "--ca-file", str(tls.ca), "--json", "get", "tls:cli"])
    assert done.exit_code == 0 and json.loads(done.stdout) == "v"
    wrong = runner.invoke(app, [*base, "--ca-file", str(tls.wrong_ca), "get", "tls:cli"])
    assert wrong.exit_code == ExitCode.UNAVAILABLE
    assert "TLS certificate verification failed" in wrong.stderr and "Traceback" not in wrong.output
    missing = runner.invoke(app, [*base, "--ca-file", "/nonexistent/ca.pem", "get", "tls:cli"])
    assert missing.exit_code == ExitCode.USAGE and "--ca-file" in missing.stderr


def test_events_over_tls(tls: Setup) -> None:
    base = [CLI, "--url", tls.url, "--token", TOKEN]
    wrong = subprocess.run(
        [*base, "--ca-file", str(tls.wrong_ca), "events", "--count", "1"], capture_output=True, text=True, timeout=60
    )
    assert wrong.returncode == ExitCode.UNAVAILABLE and "TLS certificate verification failed" in wrong.stderr
    follower = subprocess.Popen(
        [*base, "--ca-file", str(tls.ca), "events", "--count", "2", "--prefix", "tls:ev"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with SyncCacheGridClient(tls.url, auth_token=TOKEN, ca_file=tls.ca) as client:
            deadline = time.monotonic() + 20
            while follower.poll() is None and time.monotonic() < deadline:
                client.set("tls:event", 1)  # until the stream is open and sees one
                time.sleep(0.2)
        out, err = follower.communicate(timeout=20)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(timeout=10)
    assert follower.returncode == 0, err
    assert "set tls:event" in out.splitlines()  # after the stream's opening event


def test_the_flask_backend_passes_the_ca_file_on(tls: Setup) -> None:
    cache = CacheGridCache(tls.url, token=TOKEN, ca_file=str(tls.ca), key_prefix="tls:flask:")
    assert cache.set("k", {"v": 1}) and cache.get("k") == {"v": 1}
    refused = CacheGridCache(tls.url, token=TOKEN, ca_file=str(tls.wrong_ca))
    with pytest.raises(TLSError):
        refused.get("k")


def test_the_cluster_configuration_listens_with_tls_too(tls: Setup, tmp_path: Path) -> None:
    nodes = [tls.server, ServerProcess(env={"CACHEGRID_AUTH_TOKEN": TOKEN})]
    front = None
    try:
        nodes[1].wait_healthy()
        command = ["cluster", "nginx-config", "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
        front = Front(nodes, tmp_path, command, ssl.create_default_context(cafile=str(tls.ca)))
        with SyncCacheGridClient(f"https://127.0.0.1:{front.port}", auth_token=TOKEN, ca_file=tls.ca) as client:
            for number in range(20):
                client.set(f"tls:ring:{number}", number)
            assert [client.get(f"tls:ring:{number}") for number in range(20)] == list(range(20))
    finally:
        if front is not None:
            front.stop()
        nodes[1].kill()
