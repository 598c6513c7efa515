"""Training the ranker: labelled passages and reviewers' decisions in, a model file out.

`dealwatch train` calls train_ranker; a model trained from a database's reviews becomes that
database's default ranker (pipeline.jobs.analyzer.ranker_choices).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import DealwatchError
from pipeline.analysis.evaluate import load_gold
from pipeline.analysis.rank import (
    Example,
    examples_from_gold,
    examples_from_reviews,
    in_sample,
    shipped_gold,
    train,
)
from pipeline.config import Config
from pipeline.jobs.analyzer import build_analyzer
from pipeline.storage import Store
from pipeline.storage.database import DatabaseLocation

FROZEN_TEST_SET = "deal_passages_frozen.jsonl"  # held out for the quality gate


class TrainError(DealwatchError):
    """Nothing (or something that must not be) to train on; no model was written."""


@dataclass
class TrainReport:
    """What a training run learnt from and how well the model fits it."""

    out: Path
    sources: dict[str, dict[str, int]]  # "gold:<file>" or "reviews" → examples, positive
    accuracy: float | None  # in sample, at the queue threshold
    average_precision: float | None  # in sample
    features: int
    default_ranker: bool  # recorded as the database's default ranker


def train_ranker(config: Config, out: Path, *, gold_files: Sequence[Path] = (),
                 base: bool = True, reviews_db: DatabaseLocation | None = None,
                 use_model: str | None = None) -> TrainReport:
    """Train the ranker on the shipped labelled passages (unless not base), the gold_files, and
    with reviews_db the confirmed and rejected candidates of that database; write it to out.

    A model trained from reviews is recorded as that database's default ranker. Every labelled
    file is read before anything is analysed, so a bad one fails fast and writes nothing."""
    files = [(f"gold:{name}", path) for name, path in shipped_gold()] if base else []
    for path in gold_files:
        if path.name == FROZEN_TEST_SET:
            raise TrainError(f"{path}: the frozen test set is never trained on")
        files.append((f"gold:{path.name}", path))
    if not files and reviews_db is None:
        raise TrainError("nothing to train on: give --gold FILE, --from-reviews, or leave out "
                         "--no-base")
    records = [(label, load_gold(path)) for label, path in files]
    examples: list[Example] = []
    if records:
        analyzer = build_analyzer(config, use_model, ranker=None)  # features need the rule score
        for label, recs in records:
            examples += examples_from_gold(recs, analyzer, label)
    busy_timeout_ms = config.settings.database.busy_timeout_ms
    if reviews_db is not None:
        with Store(reviews_db, busy_timeout_ms) as store:
            examples += examples_from_reviews(store)
    ranker = train(examples)
    ranker.save(out)
    summary: dict[str, Any] = ranker.summary
    fit = in_sample(ranker, examples, config.rules.scoring.threshold)
    if reviews_db is not None:
        with Store(reviews_db, busy_timeout_ms) as store:
            store.candidates.record_ranker(str(out.resolve()), summary)
    return TrainReport(out, summary["sources"], fit["accuracy"], fit["average_precision"],
                       len(ranker.feature_names), reviews_db is not None)
