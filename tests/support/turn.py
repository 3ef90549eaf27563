"""Debian's coturn on loopback, checking the TURN REST API credentials we mint (its
`use-auth-secret` mode). `make call-deps` installs it."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port

REALM = "iep.test"


@dataclass(frozen=True)
class TurnServer:
    port: int
    secret: str

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"


@contextlib.contextmanager
def turn_server(folder: Path, secret: str) -> Iterator[TurnServer]:
    binary = shutil.which("turnserver")
    if binary is None:
        raise RuntimeError("coturn is missing: `make call-deps` installs it")
    port = free_port()
    # A range of its own per server, wide enough for the allocations closed calls leave
    # behind until they time out (each call takes one a side).
    relay_from = 49152 + (port % 70) * 220
    log = (folder / "turnserver.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            "-n",  # no configuration file: everything is here
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            f"--min-port={relay_from}",
            f"--max-port={relay_from + 199}",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            f"--realm={REALM}",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--fingerprint",
            "--allow-loopback-peers",  # both browsers are on this machine
            f"--pidfile={folder / 'turnserver.pid'}",
            f"--userdb={folder / 'turndb'}",
            "--log-file=stdout",
            "--simple-log",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # it listens on TCP as on UDP: ready once a connection is taken
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"turnserver did not start; see {folder / 'turnserver.log'}")
            time.sleep(0.05)
        yield TurnServer(port, secret)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
