"""Quality gate: deal detection on our own labelled sentences must not fall below pinned floors.

tests/data/deal_sentences.jsonl holds short passages written for this project (deals of many
vendors, countries, types and stages; hard negatives; aggregates; private-company and Chinese
domestic agreements). Lowering a floor is a deliberate, visible edit of FLOORS below.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pipeline.analyze import Analyzer
from pipeline.config import SHIPPED_CONFIG_DIR, load_config
from pipeline.evaluate import evaluate, format_report, load_gold

GOLD = Path(__file__).parent / "data" / "deal_sentences.jsonl"

# metric: (floor, "min") or (ceiling, "max")
FLOORS = {
    "recall": (0.95, "min"),
    "precision": (0.95, "min"),
    "fp_rate": (0.05, "max"),
    "vendor_accuracy": (0.95, "min"),
    "country_accuracy": (0.95, "min"),
    "deal_type_accuracy": (0.90, "min"),
    "aggregate_accuracy": (0.85, "min"),
}


def test_the_labelled_set_is_big_and_varied() -> None:
    records = load_gold(GOLD)
    labels = Counter(r["is_deal"] for r in records)
    assert len(records) >= 60
    assert labels["yes"] >= 30 and labels["no"] >= 20 and labels["aggregate"] >= 5
    assert len({v for r in records if r["is_deal"] == "yes" for v in r["vendors"]}) >= 10
    assert len({c for r in records if r["is_deal"] == "yes" for c in r["countries"]}) >= 25


@pytest.mark.parametrize("use_model", ["never", pytest.param("required", marks=pytest.mark.model)])
def test_detection_meets_the_floors(use_model) -> None:
    analyzer = Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model=use_model)
    metrics = evaluate(load_gold(GOLD), analyzer)
    report = format_report(metrics)
    for name, (bound, kind) in FLOORS.items():
        value = metrics[name]
        assert value is not None, f"{name} could not be measured\n{report}"
        if kind == "min":
            assert value >= bound, f"{name} {value:.2f} fell below its floor {bound}\n{report}"
        else:
            assert value <= bound, f"{name} {value:.2f} rose above its ceiling {bound}\n{report}"
