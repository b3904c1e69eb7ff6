"""Four workers on one study in a real PostgreSQL server (the storage for workers on many machines): no duplicated and
no lost trials, exactly --trials COMPLETE. The server is the Debian package's (`apt-get install postgresql`; `.ci/run`
installs it): a throw-away cluster (initdb + pg_ctl, as the `postgres` user when we are root) on a free loopback port,
removed afterwards. Skips with the reason when the binaries, the driver or the server are not there."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_workers import check_study, run_separate_searches

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

USER = "kunlun"


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))  # Debian keeps them off PATH
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg", reason="the PostgreSQL driver is missing: pip install 'kunlun-search[postgres]'")
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql; .ci/run does it as root)")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the package's `postgres` user
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server as")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without `runuser` to start the server as `postgres`")
        prefix = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="kunlun-pg-"))  # not under pytest's 0700 tmp: `postgres` must reach it
    data, sockets, log = root / "data", root / "sock", root / "server.log"
    sockets.mkdir()
    if owner is not None:
        for p in (root, sockets):
            os.chown(p, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    started = False
    try:
        init = subprocess.run([*prefix, initdb, "-D", str(data), "-U", USER, "-A", "trust", "--no-sync", "-E", "UTF8"],
                              capture_output=True, text=True, timeout=120)
        if init.returncode != 0:
            pytest.skip(f"initdb failed: {init.stderr.strip()[-500:]}")
        opts = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        start = subprocess.run([*prefix, pg_ctl, "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60",
                                "start"], capture_output=True, text=True, timeout=120)
        if start.returncode != 0:
            tail = log.read_text()[-500:] if log.exists() else start.stderr
            pytest.skip(f"the PostgreSQL server did not start: {tail.strip()}")
        started = True
        yield f"postgresql+psycopg://{USER}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True,
                           timeout=120)
        with contextlib.suppress(OSError):
            shutil.rmtree(root)


def _database(url: str, name: str) -> str:
    """A fresh database per test on the shared server."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + f"/{name}"


def test_four_searches_on_one_study(postgres_url: str, tiny_space: Path, tmp_path: Path) -> None:
    """Four `kunlun search` processes (the first creates the study in the server, three join with --resume)."""
    out = tmp_path / "study"
    storage = _database(postgres_url, "searches")
    run_separate_searches(tiny_space, out, storage)
    check_study(out)
    # the study lives in the server: pareto reads it from there (study.json names the URL)
    from kunlun.search.cli import main

    assert main(["pareto", str(out), "--no-plots", "--format", "json"]) == 0
