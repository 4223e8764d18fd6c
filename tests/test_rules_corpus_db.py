"""The labelled rules corpus as a real database: every case forged into one qmgr.db, read
back by the ESE reader, and scored again (issue 3: "the rules corpus gains its cases as real
databases"). Cases about recovered or previous-state records need recovery semantics that a
live table cannot carry; they stay covered by the blob-level corpus test."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import bitsdb
from bitsdb.forge import forge, spec_from_jobs
from bitsdb.rules import builtin_rules
from bitsdb.rules.corpus import load_cases, score

CORPUS = Path(__file__).resolve().parents[1] / "samples" / "rules"


def test_corpus_forged_into_a_qmgr_db_scores_the_same(tmp_path):
    cases = [c for c in load_cases(CORPUS)
             if c.job.provenance is None or not (c.job.provenance.recovered or c.job.provenance.state_file)]
    assert len(cases) >= 40
    db = tmp_path / "qmgr.db"
    forge(spec_from_jobs(c.job for c in cases), db)
    result = bitsdb.read(db)
    assert not result.errors and not result.warnings and not result.orphan_files
    parsed = {job.job_id: job for job in result.jobs}
    assert set(parsed) == {c.job.job_id for c in cases}
    from_db = [dataclasses.replace(c, job=parsed[c.job.job_id]) for c in cases]
    scores, problems = score(from_db, builtin_rules())
    assert problems == []
    assert all(s.precision == 1.0 and s.recall == 1.0 for s in scores.values() if s.true_positive + s.false_negative)
