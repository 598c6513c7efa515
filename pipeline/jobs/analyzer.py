"""The analysis chain a job runs, built from config, and the ranker chosen for a database."""

from __future__ import annotations

import logging

from pipeline.analysis.analyze import Analyzer
from pipeline.analysis.rank import SHIPPED, Ranker, choose_ranker
from pipeline.config import Config
from pipeline.storage import Store

logger = logging.getLogger(__name__)


def build_analyzer(config: Config, use_model: str | None = None,
                   ranker: Ranker | str | None = SHIPPED) -> Analyzer:
    """The analysis chain; use_model: auto, never or required (default: process.use_model);
    ranker: a loaded Ranker, SHIPPED, or None (the rule score)."""
    mode = use_model or config.settings.process.use_model
    analyzer = Analyzer.from_config(config, use_model=mode, ranker=ranker)
    logger.info("analyser %s", analyzer.version)
    return analyzer


def ranker_choices(config: Config, store: Store) -> list[str]:
    """Which model scores candidates, in order of preference: the setting process.ranker,
    the newest model trained for this database, the shipped one."""
    choices: list[str] = []
    if config.settings.process.ranker:
        choices.append(config.settings.process.ranker)
    newest = store.candidates.newest_ranker()
    if newest:
        choices.append(newest)
    return [*choices, SHIPPED]


def default_ranker(config: Config, store: Store) -> Ranker | None:
    """The first of ranker_choices that loads (None: the rule score alone)."""
    ranker, name = choose_ranker(ranker_choices(config, store))
    logger.info("ranking with %s", name)
    return ranker
