"""Cluster mode: a real `dask scheduler` and two `dask worker` processes on 127.0.0.1 (free ports).

The same batch (collections + a disk image, --recover) and the same image carve give byte-identical
output through the cluster and through local worker processes; a worker killed in the middle of a
run loses nothing and duplicates nothing, and the summary says what happened. A local worker
process that dies is replaced the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("distributed", reason="cluster mode needs the optional extra: pip install 'bitsdb[cluster]'")
pytestmark = [pytest.mark.tool, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    # Workers can import this module's task functions (tests/ is not a package).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                      os.environ.get("PYTHONPATH")]))}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)


def _stop(process: subprocess.Popen) -> None:
    """End one process group this test started (scheduler, or nanny + its worker)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@contextmanager
def dask_cluster(folder: Path, workers: int = 2):
    """(address, worker processes); everything is stopped afterwards."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    started = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                       "--no-dashboard"], folder / "scheduler.log")]
    worker_processes = []
    try:
        for index in range(workers):
            worker = _start(["distributed.cli.dask_worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                             "--nworkers", "1", "--no-dashboard", "--name", f"w{index}", "--death-timeout", "60"],
                            folder / f"worker{index}.log")
            started.append(worker)
            worker_processes.append(worker)
        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address, worker_processes
    finally:
        for process in reversed(started):
            _stop(process)


def _runner() -> CliRunner:
    return CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()


def _run(*args: str):
    from bitsdb.cli import cli

    return _runner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    with dask_cluster(folder) as (address, _):
        yield address


@pytest.fixture(scope="module")
def evidence(tmp_path_factory, carve_disks) -> Path:
    """A folder of 12 KAPE collections (forged databases) and a disk image."""
    from bitsdb.forge.evidence import kape_collection, numbered_jobs_spec
    from bitsdb.forge.spec import forge

    root = tmp_path_factory.mktemp("batch") / "case"
    root.mkdir()
    dbs = []
    for index in range(3):
        (root.parent / f"db{index}").mkdir()
        dbs.append(forge(numbered_jobs_spec(3 + index, first=200 + 10 * index), root.parent / f"db{index}" / "qmgr.db")
                   .database)
    for index in range(12):
        kape_collection(root, f"HOST{index:02d}", dbs[index % 3])
    shutil.copyfile(carve_disks["disk.E01"], root / "disk.E01")
    return root


def test_batch_through_the_cluster_is_byte_identical(cluster, evidence):
    local = _run("parse", "--recover", "--no-progress", "-j", "2", str(evidence))
    remote = _run("parse", "--recover", "--no-progress", "--scheduler", cluster, str(evidence))
    assert local.exit_code == 0 and remote.exit_code == 0, remote.stderr
    lines = local.stdout.splitlines()
    assert len(lines) > 60 and {json.loads(line)["provenance"]["host"] for line in lines} >= {"HOST00", "HOST11"}
    assert remote.stdout == local.stdout


def test_image_carve_through_the_cluster_is_byte_identical(cluster, carve_disks):
    image = str(carve_disks["disk.E01"])
    local = _run("carve", "--no-progress", "-j", "1", str(image))
    remote = _run("carve", "--no-progress", "--range-mib", "1", "--scheduler", cluster, image)
    assert local.exit_code == 0 and remote.exit_code == 0, remote.stderr
    assert len(local.stdout.splitlines()) > 100 and remote.stdout == local.stdout


def test_unreachable_scheduler_is_a_one_line_usage_error(carve_disks):
    address = f"tcp://127.0.0.1:{_free_port()}"
    from bitsdb.evidence import cluster as cluster_module

    original = cluster_module.DaskPool.__init__.__defaults__
    cluster_module.DaskPool.__init__.__defaults__ = (2.0,)          # do not wait 20 s for nobody
    try:
        result = _run("carve", "--scheduler", address, str(carve_disks["disk.E01"]))
    finally:
        cluster_module.DaskPool.__init__.__defaults__ = original
    assert result.exit_code == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"bitsdb: error: --scheduler {address}: cannot connect")


def test_a_malformed_scheduler_address_is_one_line_at_once():
    """A half-built Dask client used to wait 40 s at exit and print its own traceback."""
    demo = Path(__file__).resolve().parents[1] / "samples" / "demo"
    done = subprocess.run([sys.executable, "-m", "bitsdb", "parse", "--scheduler", "garbage::", str(demo)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("bitsdb: error: --scheduler garbage::: not a scheduler address")


def _located(carve) -> list:
    return [(item.provenance.to_dict(), item.carved.record.to_dict()) for item in carve.located()]


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path, carve_disks):
    from bitsdb.evidence.cluster import DaskPool, InlinePool, TaskRunner
    from bitsdb.evidence.imagecarve import carve_images

    image = str(carve_disks["disk.E01"])
    [expected] = carve_images([image], TaskRunner(InlinePool()), range_size=256 << 10)
    with dask_cluster(tmp_path) as (address, workers):
        pool = DaskPool(address)
        killed = []

        def kill_one(done: int, total: int) -> None:
            # After the first result, while ~70 range tasks remain: kill worker 0 (nanny and worker
            # process), and wait until the scheduler has removed it, so the run goes on without it.
            if killed:
                return
            assert total - done > 20
            os.killpg(workers[0].pid, signal.SIGKILL)
            workers[0].wait(timeout=15)
            killed.append(done)
            deadline = time.monotonic() + 30
            while len(pool._client.scheduler_info()["workers"]) > 1 and time.monotonic() < deadline:
                time.sleep(0.05)

        try:
            [carve] = carve_images([image], TaskRunner(pool), range_size=256 << 10, progress=kill_one)
            events = pool.events()
        finally:
            pool.close()
    assert killed and carve.failures == []
    assert _located(carve) == _located(expected) and carve.hits == expected.hits
    [event] = events
    assert event.startswith("1 worker(s) left the cluster during the run")
    # Whether the killed worker held a task at that instant is up to the scheduler; that a task
    # held by a dying worker is run again is shown deterministically below.
    assert int(event.split("; ")[1].split()[0]) >= 0, event


def _dies_once(marker: str, value: int) -> int:
    """A task whose first run kills its worker process (as a crash in a native library would)."""
    if not os.path.exists(marker):
        Path(marker).write_text("died")
        os._exit(9)
    return value * 2


def test_a_dask_worker_that_dies_in_a_task_has_the_task_rerun(tmp_path):
    """The task kills its own worker process on its first run: the worker is surely busy with one
    of ours when it dies, so the summary must count a re-run task, and every result arrives once."""
    from bitsdb.evidence.cluster import DaskPool

    with dask_cluster(tmp_path) as (address, _workers):
        pool = DaskPool(address)
        try:
            keys = {pool.submit(_dies_once, str(tmp_path / "marker"), n): n for n in range(6)}
            results = {}
            while len(results) < len(keys):
                key, value, exc = pool.next_done()
                assert exc is None and keys[key] not in results
                results[keys[key]] = value
            deadline = time.monotonic() + 30
            events = pool.events()
            while not events and time.monotonic() < deadline:      # the scheduler logs the removal
                time.sleep(0.1)
                events = pool.events()
        finally:
            pool.close()
    assert results == {n: 2 * n for n in range(6)}
    [event] = events
    assert event.startswith("1 worker(s) left the cluster during the run"), event
    assert int(event.split("; ")[1].split()[0]) >= 1, event


def test_a_local_worker_that_dies_is_replaced_and_its_task_rerun(tmp_path):
    from bitsdb.evidence.cluster import LocalPool

    with LocalPool(2) as pool:
        keys = {pool.submit(_dies_once, str(tmp_path / "marker"), n): n for n in range(6)}
        results = {}
        while len(results) < len(keys):
            key, value, exc = pool.next_done()
            assert exc is None
            results[keys[key]] = value
        events = pool.events()
    assert results == {n: 2 * n for n in range(6)}
    assert len(events) == 1 and "worker process died" in events[0]
