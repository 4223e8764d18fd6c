"""The labelled corpus in samples/rules: every built-in rule at 100 % precision and recall."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitsdb.rules import builtin_rules
from bitsdb.rules.corpus import load_cases, score

CORPUS = Path(__file__).resolve().parents[1] / "samples" / "rules"


@pytest.fixture(scope="module")
def cases():
    return load_cases(CORPUS)


def test_corpus_is_large_enough_and_ids_unique(cases):
    assert len(cases) >= 40
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids))


def test_cases_went_through_real_blobs(cases):
    # decode(encode(x)) must be complete: a partial record would mean the corpus tests the codec's gaps
    assert all(not c.job.partial and all(not f.partial for f in c.job.files) for c in cases)
    assert all(c.job.blob_size and c.job.blob_size > 0 for c in cases)


def test_every_rule_precision_and_recall(cases, capsys):
    ruleset = builtin_rules()
    scores, problems = score(cases, ruleset)
    with capsys.disabled():
        print(f"\n{'rule':<28} {'TP':>3} {'FP':>3} {'FN':>3} precision recall")
        for rule in ruleset.rules:
            s = scores[rule.id]
            print(f"{rule.id:<28} {s.true_positive:>3} {s.false_positive:>3} {s.false_negative:>3} "
                  f"{s.precision:9.0%} {s.recall:6.0%}")
    assert not problems, "\n".join(problems)
    for rule in ruleset.rules:
        assert scores[rule.id].true_positive >= 1, f"{rule.id} has no positive case in the corpus"
        assert scores[rule.id].precision == 1.0 and scores[rule.id].recall == 1.0


def test_corpus_has_benign_cases_and_evasions(cases):
    benign = [c for c in cases if all(sev in ("info",) for sev in c.expect.values())]
    assert len(benign) >= 12
    evasions = [c for c in cases if c.source == "evasions.yaml"]
    assert len(evasions) >= 10
