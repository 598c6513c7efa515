"""Quality gate: deal detection on our own labelled passages must not fall below pinned floors.

Two sets, both written for this project in our own words:
- pipeline/analysis/data/gold/deal_sentences.jsonl: short passages (deals of many vendors, countries, types and
  stages; hard negatives; aggregates; private-company and Chinese domestic agreements);
- pipeline/analysis/data/gold/deal_passages_holdout.jsonl: passages in the manner of real outlets (wire copy,
  vendor press releases, local business press, think-tank reports, long articles with a deal in
  passing, negatives that look like deals). It was written and measured before the rules were
  tuned on it (see docs/benchmarks.md for the numbers before and after).

Lowering a floor is a deliberate, visible edit of FLOORS below.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pipeline.analysis.analyze import Analyzer
from pipeline.analysis.evaluate import evaluate, format_report, load_gold
from pipeline.config import SHIPPED_CONFIG_DIR, load_config

# shipped with the package, so that an installed `dealwatch train` learns from them
DATA = Path(__file__).parent.parent / "pipeline" / "analysis" / "data" / "gold"
SETS = {"sentences": DATA / "deal_sentences.jsonl", "holdout": DATA / "deal_passages_holdout.jsonl"}

# metric: (floor, "min") or (ceiling, "max"), the same for both sets; the issue's targets are
# recall 0.90, false positives 0.15, country 0.90, vendor 0.95, deal type 0.80, aggregates 0.80.
FLOORS = {
    "recall": (0.95, "min"),
    "precision": (0.95, "min"),
    "fp_rate": (0.05, "max"),
    "vendor_accuracy": (0.95, "min"),
    "country_accuracy": (0.95, "min"),
    "deal_type_accuracy": (0.90, "min"),
    "aggregate_accuracy": (0.85, "min"),
}


# The frozen set (tests/data/deal_passages_frozen.jsonl): 140 passages written for this round
# and measured first on the code before it (docs/benchmarks.md); nothing is tuned or trained on
# it, so its figures are the honest estimate for unseen news. Its floors sit at the level measured
# on the rule-only path (the weaker one), less a margin: measured at 577af73, threshold 0.40, after
# three cancellations were relabelled `no` as the issue counts them (docs/benchmarks.md).
FROZEN = Path(__file__).parent / "data" / "deal_passages_frozen.jsonl"
FROZEN_FLOORS = {
    "recall": (0.87, "min"),  # measured 0.91
    "fp_rate": (0.14, "max"),  # measured 0.09
    "average_precision": (0.93, "min"),  # measured 0.96
    "vendor_accuracy": (0.95, "min"),  # measured 1.00
    "country_accuracy": (0.95, "min"),  # measured 1.00
    "deal_type_accuracy": (0.88, "min"),  # measured 0.93
    "aggregate_accuracy": (0.60, "min"),  # measured 0.69
    "aggregate_spurious_rate": (0.10, "max"),  # measured 0.00
}


# The frozen test sets of the other languages (tests/data/deal_passages_<lang>_frozen.jsonl):
# written from real coverage in each language, never tuned on. Floors at the level measured on
# the rule-only path at 6fd5d02 (docs/benchmarks.md), less a margin; issue 9's targets are recall
# 0.90, false positives 0.15, country 0.90, deal type 0.80, AP 0.90 on unseen news.
LANGUAGE_FLOORS = {
    "es": {"recall": (0.72, "min"),  # measured 0.79
           "fp_rate": (0.10, "max"),  # measured 0.00
           "average_precision": (0.90, "min"),  # measured 0.97
           "country_accuracy": (0.75, "min"),  # measured 0.82
           "deal_type_accuracy": (0.90, "min")},  # measured 1.00
    "pt": {"recall": (0.85, "min"),  # measured 0.93
           "fp_rate": (0.10, "max"),  # measured 0.00
           "average_precision": (0.92, "min"),  # measured 0.99
           "country_accuracy": (0.78, "min"),  # measured 0.85
           "deal_type_accuracy": (0.85, "min")},  # measured 0.92
    "fr": {"recall": (0.92, "min"),  # measured 1.00
           "fp_rate": (0.30, "max"),  # measured 0.22
           "average_precision": (0.92, "min"),  # measured 0.98
           "country_accuracy": (0.85, "min"),  # measured 0.93
           "deal_type_accuracy": (0.92, "min")},  # measured 1.00
}


@pytest.fixture(scope="module", params=["never", pytest.param("required", marks=pytest.mark.model)])
def analyzer(request: pytest.FixtureRequest) -> Analyzer:
    return Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model=request.param)


@pytest.mark.parametrize("name", sorted(SETS))
def test_the_labelled_sets_are_big_and_varied(name) -> None:
    records = load_gold(SETS[name])
    labels = Counter(r["is_deal"] for r in records)
    assert len(records) >= 60
    assert labels["yes"] >= 30 and labels["no"] >= 20 and labels["aggregate"] >= 5
    assert len({v for r in records if r["is_deal"] == "yes" for v in r["vendors"]}) >= 10
    assert len({c for r in records if r["is_deal"] == "yes" for c in r["countries"]}) >= 25


def test_the_holdout_has_the_styles_of_real_outlets() -> None:
    texts = [r["text"] for r in load_gold(SETS["holdout"])]
    assert sum(len(t) > 450 for t in texts) >= 3  # long articles with a deal in passing
    assert any(t.split(" ", 1)[0].isupper() for t in texts)  # datelines
    assert any(t.startswith("[") for t in texts)  # press releases


@pytest.mark.parametrize("name", [*sorted(SETS), "frozen"])
def test_detection_meets_the_floors(analyzer, name) -> None:
    metrics = evaluate(load_gold(SETS.get(name, FROZEN)), analyzer)
    assert_floors(name, metrics, FROZEN_FLOORS if name == "frozen" else FLOORS)


def assert_floors(name: str, metrics: dict, floors: dict[str, tuple[float, str]]) -> None:
    report = format_report(metrics)
    for metric, (bound, kind) in floors.items():
        value = metrics[metric]
        assert value is not None, f"{name}: {metric} could not be measured\n{report}"
        if kind == "min":
            assert value >= bound, f"{name}: {metric} {value:.2f} fell below its floor {bound}\n{report}"
        else:
            assert value <= bound, f"{name}: {metric} {value:.2f} rose above its ceiling {bound}\n{report}"


@pytest.mark.parametrize("lang", sorted(LANGUAGE_FLOORS))
def test_detection_in_other_languages_meets_the_floors(analyzer, lang) -> None:
    path = Path(__file__).parent / "data" / f"deal_passages_{lang}_frozen.jsonl"
    records = load_gold(path)
    assert {r.get("language") for r in records} == {lang}
    assert_floors(lang, evaluate(records, analyzer), LANGUAGE_FLOORS[lang])
