"""Training, choosing and applying the ranker from the command line: train, analyze --ranker,
process --rescore, the queue's hidden low scores, and the shipped model being up to date."""

from __future__ import annotations

import json
from pathlib import Path

from registryfixtures import story

from pipeline.analysis import rank
from pipeline.analysis.analyze import Analyzer
from pipeline.analysis.evaluate import load_gold
from pipeline.config import SHIPPED_CONFIG_DIR, load_config
from pipeline.review.decisions import decide
from pipeline.storage import Store

DEAL = "Kenya's Ministry of ICT signed a $48 million contract with Huawei to build a government cloud data centre."

GOLD = [
    {"id": "g1", "is_deal": "yes", "vendors": ["Huawei"], "countries": ["Kenya"], "text": DEAL},
    {"id": "g2", "is_deal": "yes", "vendors": ["ZTE"], "countries": ["Ethiopia"],
     "text": "ZTE has won a contract from Ethio Telecom to upgrade 4G base stations in Addis Ababa."},
    {"id": "g3", "is_deal": "no", "vendors": ["Huawei"], "countries": ["Sweden"],
     "text": "Sweden's regulator banned Huawei from its 5G network, citing national security."},
    {"id": "g4", "is_deal": "no", "vendors": ["Huawei"], "countries": ["Kenya"],
     "text": "Kenya's Ministry of ICT denied reports that it signed a contract with Huawei, "
             "calling them baseless."},
]

GOOD = "The Ministry of Works signed a contract with Huawei for a cloud, officials said ({})."
BAD = "Officials denied the Huawei cloud contract talk, a spokesman said ({})."


def _gold_file(tmp_path: Path, records: list[dict]) -> Path:
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _reviewed_store(db_path: Path) -> dict[str, list[int]]:
    """Stories of two shapes: reviewers confirmed the ministry contracts and rejected the denials;
    one of each is still pending. Both shapes start with the same rule score."""
    ids: dict[str, list[int]] = {"good": [], "bad": []}
    with Store(db_path) as store:
        for i in range(8):
            ids["good"].append(story(store, GOOD.format(i), score=0.6,
                                     signals={"trigger": 1.0, "negative": 0.0}))
            ids["bad"].append(story(store, BAD.format(i), score=0.6, counterpart=None,
                                    counterpart_type=None,
                                    signals={"trigger": 1.0, "negative": 1.0}))
        for i in range(7):
            decide(store, ids["good"][i], "confirm", "ann", deal_id="new")
            decide(store, ids["bad"][i], "reject", "ann", reason="not_a_deal")
    return ids


def _scores(db_path: Path) -> dict[int, tuple[float, str]]:
    with Store(db_path) as store:
        return {r[0]: (r[1], r[2]) for r in store.db.execute(
            "SELECT id, score, reasons FROM candidates ORDER BY id").fetchall()}


def test_train_from_gold_files_writes_a_model(run_cli, tmp_path) -> None:
    out = tmp_path / "ranker.json"
    result = run_cli("train", "--no-base", "--gold", str(_gold_file(tmp_path, GOLD)), "--out",
                     str(out), "--model", "never")
    assert result.exit_code == 0, result.output
    assert "trained on gold:labelled.jsonl" in result.output and "in sample" in result.output
    model = rank.load(out)
    assert model.summary["sources"]["gold:labelled.jsonl"]["positive"] >= 1


def test_train_refuses_one_class_and_empty_sets(run_cli, tmp_path) -> None:
    only_yes = _gold_file(tmp_path, GOLD[:2])
    result = run_cli("train", "--no-base", "--gold", str(only_yes), "--out",
                     str(tmp_path / "r.json"), "--model", "never")
    assert result.exit_code == 1
    assert "a ranker needs both kinds" in result.output and len(result.output.strip().splitlines()) == 1
    result = run_cli("train", "--no-base", "--out", str(tmp_path / "r.json"))
    assert result.exit_code == 1 and "nothing to train on" in result.output
    assert not (tmp_path / "r.json").exists()


def test_train_refuses_a_malformed_labelled_file(run_cli, tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "Huawei", "is_deal": "maybe"}\n')
    result = run_cli("train", "--gold", str(bad), "--out", str(tmp_path / "r.json"))
    assert result.exit_code == 1 and str(bad) in result.output and "is_deal" in result.output


def test_analyze_gives_reasons_and_queued(run_cli) -> None:
    result = run_cli("analyze", "-", "--model", "never", input=DEAL)
    assert result.exit_code == 0, result.output
    deal = json.loads(result.output)["candidates"][0]
    assert 0 <= deal["score"] <= 1 and deal["queued"] is True
    assert deal["reasons"] and all(r[:2] in ("+ ", "− ") for r in deal["reasons"])


def test_analyze_with_a_bad_ranker_is_a_one_line_error(run_cli, tmp_path) -> None:
    bad = tmp_path / "model.json"
    bad.write_text('{"format": "dealwatch-ranker", "version": 2}')
    result = run_cli("analyze", "-", "--model", "never", "--ranker", str(bad), input=DEAL)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert str(bad) in result.output and "version 2" in result.output


def test_analyze_with_a_trained_ranker(run_cli, tmp_path) -> None:
    out = tmp_path / "ranker.json"
    assert run_cli("train", "--no-base", "--gold", str(_gold_file(tmp_path, GOLD)), "--out",
                   str(out), "--model", "never").exit_code == 0
    result = run_cli("analyze", "-", "--model", "never", "--ranker", str(out), input=DEAL)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["candidates"][0]["kind"] == "deal"


def test_rescore_after_training_on_reviews_ranks_the_confirmed_shape_higher(run_cli, db_path,
                                                                            tmp_path) -> None:
    ids = _reviewed_store(db_path)
    before = _scores(db_path)
    out = tmp_path / "db-ranker.json"
    result = run_cli("train", "--from-reviews", "--no-base", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "trained on reviews: 14 candidates, 7 confirmed" in result.output
    result = run_cli("process", "--rescore")  # the newest model trained for this database
    assert result.exit_code == 0, result.output
    assert "rescored 16 candidates" in result.output and str(out) in result.output
    after = _scores(db_path)
    assert after != before
    good, bad = ids["good"][-1], ids["bad"][-1]  # the two still pending
    assert after[good][0] > after[bad][0]
    assert before[good][0] == before[bad][0]
    assert json.loads(after[good][1])  # reasons stored
    again = run_cli("process", "--rescore")
    assert again.exit_code == 0 and ": 0 changed" in again.output
    assert _scores(db_path) == after


def test_a_model_that_fails_to_load_changes_nothing(run_cli, db_path, tmp_path) -> None:
    _reviewed_store(db_path)
    out = tmp_path / "db-ranker.json"
    assert run_cli("train", "--from-reviews", "--no-base", "--out", str(out)).exit_code == 0
    assert run_cli("process", "--rescore").exit_code == 0
    scored = _scores(db_path)
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"format": "something-else"}')
    result = run_cli("process", "--rescore", "--ranker", str(foreign))
    assert result.exit_code == 1
    assert str(foreign) in result.output and "nothing was rescored" in result.output
    assert _scores(db_path) == scored
    out.write_text("{broken")  # the database's own model breaks: nothing changes either
    result = run_cli("process", "--rescore")
    assert result.exit_code == 1 and str(out) in result.output
    assert _scores(db_path) == scored


def test_processing_falls_back_when_the_configured_ranker_fails(db_path, tmp_path, make_config,
                                                                caplog) -> None:
    from pipeline.cli import State

    config = make_config({"settings.toml": f'[process]\nranker = "{tmp_path / "missing.json"}"\n'})
    state = State(str(db_path), str(config), 0)
    with Store(db_path) as store:
        ranker = state.default_ranker(store)
    assert isinstance(ranker, rank.Ranker) and ranker.summary["sources"]  # the shipped one
    assert "missing.json: no such ranker model file" in caplog.text


def test_the_queue_hides_low_scores_by_default_and_a_filter_shows_them(run_cli, db_path) -> None:
    with Store(db_path) as store:
        high = story(store, "Huawei signed a cloud contract with Kenya's Ministry of ICT.", score=0.9)
        low = story(store, "Huawei and a Kenyan ministry met in Nairobi.", score=0.2, queued=False)
    result = run_cli("queue", "--json")
    shown = {r["id"] for r in json.loads(result.output)}
    assert shown == {high}
    result = run_cli("queue")
    assert "1 pending candidates scored below the queue threshold are hidden" in result.output
    for flag in (["--all"], ["--min-score", "0.1"]):
        shown = {r["id"] for r in json.loads(run_cli("queue", "--json", *flag).output)}
        assert shown == {high, low}, flag
    assert {r["id"] for r in json.loads(run_cli("review", "list", "--json").output)} == {high}
    assert {r["id"] for r in json.loads(run_cli("review", "list", "--all", "--json").output)} == {high, low}
    assert {r["id"] for r in json.loads(run_cli("queue", "--json", "--min-score", "0.5").output)} == {high}


def test_review_show_says_why_this_score(run_cli, db_path) -> None:
    with Store(db_path) as store:
        cid = story(store, "Huawei signed a cloud contract with Kenya's Ministry of ICT.", score=0.9,
                    reasons=["+ named ministry as party", "+ word 'contract'"])
    result = run_cli("review", "show", str(cid))
    assert result.exit_code == 0, result.output
    assert "why this score: + named ministry as party; + word 'contract'" in result.output
    data = json.loads(run_cli("review", "show", str(cid), "--json").output)
    assert data["candidate"]["reasons"] == ["+ named ministry as party", "+ word 'contract'"]


def test_the_shipped_ranker_is_rebuilt_from_the_shipped_data() -> None:
    """`make ranker` trains pipeline/analysis/data/ranker.json; a detector change without it fails here."""
    analyzer = Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), "never", ranker=None)
    examples = []
    for name, path in rank.shipped_gold():
        examples += rank.examples_from_gold(load_gold(path), analyzer, f"gold:{name}")
    rebuilt = rank.train(examples)
    shipped = rank.load_shipped()
    hint = ("the shipped ranker is out of date with the detector or the labelled data: "
            "run `make ranker` and commit pipeline/analysis/data/ranker.json")
    assert rebuilt.summary == shipped.summary, hint
    assert rebuilt.feature_names == shipped.feature_names, hint
    for name, a, b in zip(rebuilt.feature_names, rebuilt.coefficients, shipped.coefficients,
                          strict=True):
        assert abs(a - b) <= 1e-6, f"{name}: {a} != {b}; {hint}"
    assert abs(rebuilt.intercept - shipped.intercept) <= 1e-6, hint
