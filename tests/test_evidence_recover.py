"""--recover through the evidence layer: carved versions from the store and from the ESE logs
beside it, named as the evidence names them (also inside a zip, where both are temporary copies)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from bitsdb.cli import cli
from bitsdb.forge.evidence import kape_collection, zip_folder

from conftest import real_sample

DOWNLOADER = ("C", "ProgramData", "Microsoft", "Network", "Downloader")


def _collection(tmp_path):
    win11 = real_sample("artemis", "win11_qmgr.db")
    win10 = real_sample("artemis", "win10_qmgr.db")
    item = kape_collection(tmp_path / "cases", "WKS9", win11)
    folder = item.joinpath(*DOWNLOADER)
    # An ESE log holding old page images: here, the pages of another database (its job records).
    (folder / "edb.log").write_bytes(win10.read_bytes()[16384 * 4:])
    return item, folder


def _jobs(*args):
    result = CliRunner().invoke(cli, ["parse", "--recover", "--no-progress", *args])
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if '"record_type":"job"' in line]


def test_recover_in_a_collection_names_the_store_and_the_log(tmp_path):
    item, folder = _collection(tmp_path)
    jobs = _jobs(str(item))
    live = [j for j in jobs if not j["provenance"]["recovered"]]
    recovered = [j for j in jobs if j["provenance"]["recovered"]]
    assert len(live) == 4
    from_db = [j for j in recovered if j["provenance"]["source_path"] == str(folder / "qmgr.db")]
    from_log = [j for j in recovered if j["provenance"]["source_path"] == str(folder / "edb.log")]
    assert from_db and from_log and len(from_db) + len(from_log) == len(recovered)
    assert {j["provenance"]["recovered_from"] for j in from_log} == {"log file"}
    assert any(j["display_name"] == "Chrome Component Updater" for j in from_log)
    assert all(j["provenance"]["host"] == "WKS9" for j in jobs)


def test_recover_inside_a_zip_uses_the_zip_names(tmp_path):
    item, _ = _collection(tmp_path)
    package = zip_folder(item, tmp_path / "WKS9.zip")
    jobs = _jobs(str(package))
    recovered = [j for j in jobs if j["provenance"]["recovered"]]
    paths = {j["provenance"]["source_path"] for j in recovered}
    prefix = f"{package}!C/ProgramData/Microsoft/Network/Downloader/"
    assert paths == {prefix + "qmgr.db", prefix + "edb.log"}
    assert all("bitsdb-evidence-" not in json.dumps(j) for j in jobs)     # no temporary path leaks out


def test_recover_hashes_the_store_once(monkeypatch):
    """The live read has the database's SHA-256; carving its pages takes it instead of reading the
    whole file again to hash it (ESE logs beside it, not hashed before, are hashed by the carve)."""
    import hashlib
    from pathlib import Path

    from bitsdb.carve import scanner as scanner_module
    from bitsdb.stores import read_files

    database = Path(__file__).resolve().parents[1] / "samples" / "demo" / "qmgr.db"
    hashing: list[bool] = []
    original = scanner_module.Scanner.__init__

    def recording(self, *args, hash_input=True, **kwargs):
        hashing.append(hash_input)
        original(self, *args, hash_input=hash_input, **kwargs)

    monkeypatch.setattr(scanner_module.Scanner, "__init__", recording)
    [(_, result)] = read_files([database], recover=True)
    assert hashing[0] is False and len(hashing) == 2 and hashing[1] is True   # qmgr.db, then edb.log
    recovered = [job for job in result.jobs if job.provenance.recovered]
    assert recovered, "the demo store has deleted jobs"
    digests = {job.provenance.source_path: job.provenance.source_sha256 for job in recovered}
    for path, digest in digests.items():
        assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert str(database) in digests
