"""The labelled corpus in samples/rules: verdicts per case, precision / recall per verdict level
and per rule (issue 13's done criteria: every malicious case at its expected verdict or higher,
no benign case at medium or higher)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bitsdb.decode.legacy import decode_legacy_job
from bitsdb.forge.legacy import encode_legacy_job
from bitsdb.rules import builtin_rules
from bitsdb.rules.corpus import evaluate_cases, load_cases

CORPUS = Path(__file__).resolve().parents[1] / "samples" / "rules"


def legacy_codec(job):
    """ESE-shaped job -> the legacy state-file record codec -> Job (as qmgr0.dat would give it)."""
    return decode_legacy_job(encode_legacy_job(job))


@pytest.fixture(scope="module")
def cases():
    return load_cases(CORPUS, legacy_codec)


@pytest.fixture(scope="module")
def report(cases):
    return evaluate_cases(cases, builtin_rules())


def test_corpus_size_and_spread(cases):
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    benign = [c for c in cases if c.label == "benign"]
    malicious = [c for c in cases if c.label == "malicious"]
    assert len(cases) >= 150 and len(benign) >= 60 and len(malicious) >= 60
    assert len({c.family for c in benign if c.family}) >= 25
    attacks = [c for c in malicious if c.file == "allowlist-attacks.yaml"]
    assert len(attacks) >= 20
    assert {c.record for c in cases} == {"live", "legacy", "recovered"}
    # the behaviour corpus names its sources; rule-level files (notify.yaml, remote.yaml ...) test one rule each
    behaviour = [c for c in benign + malicious if c.file.startswith(("benign-", "malicious-", "allowlist-"))]
    assert len([c for c in behaviour if c.label == "benign"]) >= 60
    assert len([c for c in behaviour if c.label == "malicious"]) >= 60
    assert all(c.source and c.family for c in behaviour), [c.id for c in behaviour if not c.source or not c.family]


def test_cases_went_through_real_records(cases):
    # decode(encode(x)) must be complete: a partial record would mean the corpus tests the codec's gaps
    for case in cases:
        damaged = "overwritten" in (case.job.partial_reason or "")
        assert damaged or not case.job.partial, (case.id, case.job.partial_reason)
        assert all(not f.partial for f in case.job.files), case.id
        assert case.job.blob_size and case.job.blob_size > 0, case.id
        if case.record == "legacy":
            assert case.job.creator_image is None and case.job.http_method is None
            assert case.job.marker_label.startswith("legacy")


def test_verdicts_meet_the_labels(report, capsys):
    with capsys.disabled():
        print("\n" + report.table())
    assert report.problems == [], "\n".join(report.problems)
    for level, score in report.levels.items():
        assert score.false_positive == 0, level
    assert report.levels["medium"].recall == 1.0


def test_every_rule_has_a_positive_case(report):
    ruleset = builtin_rules()
    # Rules of other subjects (processes, the service, log coverage) are exercised in test_eventlogs_rules.
    missing = [rule.id for rule in ruleset.rules if rule.subject == "job" and report.rules[rule.id].true_positive == 0]
    assert missing == []


def test_benign_cases_are_quiet_and_malicious_cases_explained(cases, report):
    for case in cases:
        verdict = report.verdicts[case.id]
        if case.label == "benign":
            assert verdict.severity in ("info", "low"), case.id
        if case.label == "malicious":
            assert verdict.hits and verdict.reasons[0].source.startswith(("rule:", "combine:")), case.id


def test_damaged_and_legacy_cases_lower_confidence(cases, report):
    damaged = [c for c in cases if "overwritten" in (c.job.partial_reason or "")]
    assert damaged
    for case in damaged:
        assert report.verdicts[case.id].confidence == "low"
    legacy = [c for c in cases if c.record == "legacy"]
    assert legacy and all(report.verdicts[c.id].confidence != "high" for c in legacy)
