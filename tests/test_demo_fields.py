"""The analyser on the demo site's stories: every field a reviewer sees, against _expected.json.

Each demo article is extracted from its HTML as the pipeline does it (pipeline.ingest.extract) and
analysed alone. A deal story must give exactly one flagged deal; a negative none; the aggregate
an aggregate. Over all deal stories, at least 90% of the fields vendor, country, deal type,
stage, value + currency and counterpart type must match: a reviewer may have to correct one field
in ten, and the demo stories keep real ambiguities on purpose (the Honduran police use the
network, the Secretariat of Security signed it). `year` is left out: the expected year is the
year of publication, which the text of most stories does not state, while the analyser reports
the year a sentence gives (the Kyrgyz contract "signed in 2023").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from models.records import Candidate, Passage
from pipeline.analysis.analyze import Analyzer
from pipeline.config import SHIPPED_CONFIG_DIR, load_config
from pipeline.ingest.extract import extract_article

SITE = Path(__file__).resolve().parent.parent / "pipeline" / "demo" / "site"
EXPECTED = [e for e in json.loads((SITE / "_expected.json").read_text(encoding="utf-8"))
            if e["kind"] != "not_article"]
FIELD_FLOOR = 0.90


@pytest.fixture(scope="module", params=["never", pytest.param("required", marks=pytest.mark.model)])
def all_candidates(request: pytest.FixtureRequest) -> tuple[float, dict[str, list[Candidate]]]:
    """Every story's candidates, below the threshold too, and the threshold."""
    analyzer = Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model=request.param)
    passages = []
    for story in EXPECTED:
        extraction = extract_article((SITE / story["path"].lstrip("/")).read_bytes(),
                                     "http://demo.test" + story["path"])
        assert extraction.article is not None, story["path"]
        # as processing does: the page's declared language, confirmed by identification
        passages.append(Passage(extraction.article.text, extraction.article.title,
                                extraction.article.language))
    found = {story["path"]: analysis.candidates
             for story, analysis in zip(EXPECTED, analyzer.analyze_many(passages), strict=True)}
    return analyzer.config.rules.scoring.threshold, found


@pytest.fixture(scope="module")
def analyses(all_candidates) -> dict[str, list[Candidate]]:
    """Every story's candidates at or above the threshold: what the queue shows by default."""
    threshold, found = all_candidates
    return {path: [c for c in candidates if c.score >= threshold] for path, candidates in found.items()}


def test_a_story_of_an_ended_deal_is_kept_below_the_queue(all_candidates) -> None:
    threshold, found = all_candidates
    for story in EXPECTED:
        if story["kind"] == "ended":
            ended = [c for c in found[story["path"]] if c.kind == "deal" and c.stage == "cancelled"]
            assert ended and all(c.score < threshold for c in ended), story["path"]
            assert (ended[0].vendor, ended[0].country) == (story["vendor"], story["country"])


def field_checks(story: dict[str, Any], deal: Candidate) -> dict[str, bool]:
    value_ok = (story["value"] is None) == (deal.value is None) and (
        story["value"] is None or abs(deal.value - story["value"]) <= 0.01 * story["value"])
    return {
        "vendor": story["vendor"] in deal.vendors,
        "country": deal.country == story["country"],
        "deal_type": story["deal_type"] in deal.deal_types,
        "stage": deal.stage == story["stage"],
        "value": value_ok and deal.currency == story["currency"],
        "counterpart_type": deal.counterpart_type == story["counterpart_type"],
    }


def check_flagged_deals(story: dict[str, Any], candidates: list[Candidate]) -> None:
    deals = [c for c in candidates if c.kind == "deal"]
    if story["kind"] == "deal":
        assert len(deals) == 1, (story["path"], [c.to_json() for c in deals])
    else:
        assert deals == [], (story["path"], [c.to_json() for c in deals])


def test_each_deal_story_gives_one_flagged_deal(analyses) -> None:
    for story in EXPECTED:
        check_flagged_deals(story, analyses[story["path"]])


def test_the_aggregate_story_is_an_aggregate(analyses) -> None:
    for story in EXPECTED:
        if story["kind"] == "aggregate":
            aggregates = [c for c in analyses[story["path"]] if c.kind == "aggregate"]
            assert aggregates and story["vendor"] in aggregates[0].vendors
            assert story["deal_type"] in aggregates[0].deal_types
            assert aggregates[0].year != 2006  # "since 2006" opens the period it counts


def test_deal_fields_match_what_a_reviewer_expects(analyses) -> None:
    checks: dict[str, dict[str, bool]] = {}
    for story in EXPECTED:
        deals = [c for c in analyses[story["path"]] if c.kind == "deal"]
        if story["kind"] == "deal" and deals:
            checks[story["path"]] = field_checks(story, deals[0])
    right = sum(ok for fields in checks.values() for ok in fields.values())
    total = sum(len(fields) for fields in checks.values())
    wrong = {path: [name for name, ok in fields.items() if not ok]
             for path, fields in checks.items() if not all(fields.values())}
    assert total and right / total >= FIELD_FLOOR, f"{right}/{total} fields right; wrong: {wrong}"
    # the fields of the issue's own examples are right
    for path, name in [("/2026/01/14/malawi-breaks-ground-on-national-data-centre.html", "stage"),
                       ("/partner/coastline/2026/03/03/kenya-signs-huawei-government-cloud-contract.html",
                        "country")]:
        assert checks[path][name], (path, name)


def test_the_kenyan_headline_names_no_amount_as_a_government(analyses) -> None:
    path = "/partner/coastline/2026/03/03/kenya-signs-huawei-government-cloud-contract.html"
    for candidate in analyses[path]:
        assert "Sh17.5" not in (candidate.counterpart or "")
