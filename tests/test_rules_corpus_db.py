"""The labelled rules corpus as a real database: every live case forged into one qmgr.db, read
back by the ESE reader, and judged again: the same verdict and the same hits as from the blobs.
Recovered, legacy, damaged and file-less cases need record forms a live table cannot carry;
they stay covered by the blob-level corpus test."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import bitsdb
from bitsdb.forge import forge, spec_from_jobs
from bitsdb.rules import builtin_rules
from bitsdb.rules.corpus import evaluate_cases, load_cases

CORPUS = Path(__file__).resolve().parents[1] / "samples" / "rules"


def test_corpus_forged_into_a_qmgr_db_judges_the_same(tmp_path):
    from test_rules_corpus import legacy_codec

    cases = [c for c in load_cases(CORPUS, legacy_codec)
             if c.record == "live" and not c.job.partial and c.job.files
             and not (c.job.provenance.state_file or c.job.provenance.recovered)]
    assert len(cases) >= 120
    db = tmp_path / "qmgr.db"
    # A database holds no event-log history: forge the job without it, and give the read job the
    # same history back (the logs beside the database), as the join does.
    forge(spec_from_jobs(dataclasses.replace(c.job, history=None) for c in cases), db)
    result = bitsdb.read(db)
    assert not result.errors and not result.warnings and not result.orphan_files
    parsed = {job.job_id: job for job in result.jobs}
    assert set(parsed) == {c.job.job_id for c in cases}
    rules = builtin_rules()
    from_blobs = evaluate_cases(cases, rules)
    from_db = evaluate_cases([dataclasses.replace(c, job=dataclasses.replace(parsed[c.job.job_id], history=c.job.history))
                              for c in cases], rules)
    assert from_db.problems == []
    for case in cases:
        a, b = from_blobs.verdicts[case.id], from_db.verdicts[case.id]
        assert (a.severity, a.confidence) == (b.severity, b.confidence), case.id
        assert [(h.rule_id, h.severity) for h in a.hits] == [(h.rule_id, h.severity) for h in b.hits], case.id
