"""A private PostgreSQL server for fault tests: its own data directory and port on
127.0.0.1, started with pg_ctl and always stopped (and its directory removed) after."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port


def server_binaries() -> Path | None:
    """The newest Debian PostgreSQL server's bin directory, or None when none is installed."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    return Path(found[-1]).parent if found else None


@dataclass
class PrivateServer:
    url: str
    data_dir: Path
    bin_dir: Path

    def pids(self) -> list[int]:
        """The postmaster and every backend and helper process it has forked."""
        postmaster = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        children = []
        for status in glob.glob("/proc/[0-9]*/status"):
            try:
                fields = dict(
                    line.split(":\t", 1) for line in Path(status).read_text().splitlines()
                )
            except (OSError, ValueError):
                continue  # gone meanwhile
            if int(fields.get("PPid", "0").strip()) == postmaster:
                children.append(int(fields["Pid"].strip()))
        return [postmaster, *children]

    def signal_all(self, number: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, number)
            except ProcessLookupError:
                pass

    @contextmanager
    def frozen(self, *, at_most: float = 60) -> Iterator[None]:
        """Every process of the server stopped (SIGSTOP): the kernel still accepts and
        acknowledges, nothing answers. SIGCONT on the way out, whatever happened, or after
        `at_most` seconds, so a test of a fix that does not work fails instead of hanging."""
        thaw = threading.Timer(at_most, self.signal_all, args=(signal.SIGCONT,))
        self.signal_all(signal.SIGSTOP)
        thaw.start()
        try:
            yield
        finally:
            thaw.cancel()
            self.signal_all(signal.SIGCONT)


def _as_postgres() -> dict:
    """initdb and postgres refuse to run as root: run them as the `postgres` account then."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


@contextmanager
def private_postgres() -> Iterator[PrivateServer]:
    bin_dir = server_binaries()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    account = _as_postgres()
    root = Path(tempfile.mkdtemp(prefix="autocheckin-pg-"))
    data_dir = root / "data"
    port = free_port()
    started = False
    try:
        if account:
            shutil.chown(root, account["user"], account["group"])
        subprocess.run(
            [bin_dir / "initdb", "-D", data_dir, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            **account,
        )
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
        subprocess.run(
            [bin_dir / "pg_ctl", "-D", data_dir, "-o", options, "-l", root / "log", "-w", "start"],
            check=True,
            capture_output=True,
            **account,
        )
        started = True
        yield PrivateServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", data_dir, bin_dir)
    finally:
        if started:
            # A frozen server would never stop: wake it first.
            server = PrivateServer("", data_dir, bin_dir)
            try:
                server.signal_all(signal.SIGCONT)
            except (OSError, ValueError):
                pass
            subprocess.run(
                [bin_dir / "pg_ctl", "-D", data_dir, "-m", "immediate", "-w", "stop"],
                check=False,
                capture_output=True,
                **account,
            )
        shutil.rmtree(root, ignore_errors=True)
