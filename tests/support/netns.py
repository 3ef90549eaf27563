"""Real network cuts for tests: a network namespace joined to this host by a veth pair, and a
PostgreSQL of the test's own that the namespace can reach (the machine's listens on loopback).

Cutting the link (`Site.cut`) drops every packet both ways, as a failed uplink does: no RST,
no FIN; each side only finds out by its own timeouts and keepalives.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.servers import free_port


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class Site:
    """A network namespace with its own address, reachable from the host until cut."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    subnet: int = field(default_factory=lambda: random.randrange(1, 250))

    @property
    def namespace(self) -> str:
        return f"iep-{self.tag}"

    @property
    def host_ip(self) -> str:
        return f"10.213.{self.subnet}.1"

    @property
    def ip(self) -> str:
        return f"10.213.{self.subnet}.2"

    @property
    def prefix(self) -> list[str]:
        """Run a command inside the namespace."""
        return ["ip", "netns", "exec", self.namespace]

    @property
    def _host_link(self) -> str:
        return f"vh{self.tag}"

    def create(self) -> None:
        if shutil.which("ip") is None:
            pytest.fail("network cuts need iproute2 (`ip`) and root")
        inside = f"vn{self.tag}"
        _ip("netns", "add", self.namespace)
        _ip("link", "add", self._host_link, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", self.namespace)
        _ip("addr", "add", f"{self.host_ip}/24", "dev", self._host_link)
        _ip("link", "set", self._host_link, "up")
        _ip("-n", self.namespace, "addr", "add", f"{self.ip}/24", "dev", inside)
        _ip("-n", self.namespace, "link", "set", inside, "up")
        _ip("-n", self.namespace, "link", "set", "lo", "up")

    def cut(self) -> None:
        _ip("link", "set", self._host_link, "down")

    def heal(self) -> None:
        _ip("link", "set", self._host_link, "up")

    def delete(self) -> None:
        # Deleting the namespace takes the veth pair with it; the second is for a half-made one.
        subprocess.run(["ip", "netns", "del", self.namespace], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", self._host_link], check=False, capture_output=True)


@dataclass
class PrivatePostgres:
    """`initdb` + `pg_ctl` of Debian's PostgreSQL, run as the `postgres` user, listening on
    loopback and on `also_listen` (trust authentication: a throwaway cluster)."""

    also_listen: str
    port: int = field(default_factory=free_port)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="iep-pg-")))

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def url_from_site(self) -> str:
        return f"postgresql://postgres@{self.also_listen}:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        if not found:
            pytest.fail(f"PostgreSQL's {name} is required (Debian package postgresql)")
        return str(found[-1])

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True
        )

    def start(self) -> None:
        shutil.chown(self.folder, "postgres", "postgres")
        data = self.folder / "data"
        self._as_postgres(
            self._bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.also_listen}/16 trust\n")
        options = (
            f"-p {self.port} -k {self.folder} -c fsync=off "
            f"-c listen_addresses='127.0.0.1,{self.also_listen}'"
        )
        self._as_postgres(
            self._bin("pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        pg_ctl = [self._bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate"]
        runuser = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*runuser, *pg_ctl, "stop"], check=False, capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)
