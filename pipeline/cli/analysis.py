"""Analysis on its own: analyze text without the database, train the ranker, eval the detector."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from models.errors import DealwatchError
from models.records import Passage
from pipeline.analysis.evaluate import evaluate, format_report, load_gold
from pipeline.cli.common import (
    State,
    echo_json,
    fail,
    lang_option,
    model_option,
    pass_state,
)
from pipeline.jsonl import json_lines, parse_json_line
from pipeline.language import normalise_language

if TYPE_CHECKING:
    from pipeline.analysis.results import Analysis


def _read_input(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror}")


def _document_passage(record: dict[str, Any], language: str | None = None) -> Passage:
    """The text to analyse, its headline (the record's "title", else the page's own) and its
    language: the record's "language", else `language` (--lang), else an HTML page's declared
    one confirmed by identification, else None (the analyser identifies it)."""
    from pipeline.ingest.extract import html_document, looks_like_html  # loads trafilatura

    url, title, declared = record.get("url"), record.get("title"), record.get("language")
    for name, value in (("url", url), ("title", title), ("language", declared)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f'"{name}" must be a string')
    if declared is not None:
        language = normalise_language(declared)
        if language is None:
            raise ValueError(f'"language" {declared!r} is no language code (ISO 639-1, e.g. es)')
    html = record.get("html")
    if not isinstance(html, str):
        html = record.get("text")
        if not isinstance(html, str):
            raise ValueError('needs a "text" or an "html" string')
        if not looks_like_html(html):
            return Passage(html, title, language)
    page = html_document(html, url)
    return Passage(page.text, title or page.title, language or page.language)


def _analysis_json(doc_id: Any, analysis: Analysis, signals: bool) -> dict[str, Any]:
    """One `analyze` output object; a text in a language dealwatch does not read says so
    ("supported": false) and has nothing found in it."""
    supported = analysis.supported
    out: dict[str, Any] = {"id": doc_id, "language": analysis.language}
    if not supported:
        out["supported"] = False
    out["entities"] = [e.to_json() for e in analysis.entities] if supported else []
    out["candidates"] = ([c.to_json(with_signals=signals) for c in analysis.candidates]
                         if supported else [])
    return out


@click.command()
@click.argument("source", default="-", metavar="FILE|-")
@click.option("--jsonl", is_flag=True,
              help='Input has one JSON object per line: {"id": ..., "text": ...} (or "html"), '
                   'with an optional "title": the headline, read as context.')
@click.option("--signals", is_flag=True, help="Also show why each candidate scored as it did.")
@click.option("--ranker", "ranker_path", default=None, metavar="PATH",
              help="Score with this ranker model (dealwatch train); default: process.ranker, "
                   "else the shipped one.")
@model_option()
@lang_option("The language of the input (ISO 639-1: en, es, pt, fr); a --jsonl record's own "
             '"language" comes first. Default: identified from the text (an HTML page\'s '
             "declared language, confirmed).")
@pass_state
def analyze(state: State, source: str, jsonl: bool, signals: bool, ranker_path: str | None,
            use_model: str | None, language: str | None) -> None:
    """Tag entities and detect deal candidates in text or HTML, without the database.

    Prints JSON: {"id", "language", "entities": [...], "candidates": [...]} (one object per line
    with --jsonl). HTML is detected and its main text and headline extracted first. A headline
    is context (the country, the kind of deal, the vendor a story is about), never evidence. A
    text in a language dealwatch does not read is not analysed: "supported": false, no
    candidates.

    \b
    Example:
        echo "Huawei signed a cloud deal with Kenya's ICT ministry." | dealwatch analyze -
        dealwatch analyze --lang es nota.html
        dealwatch analyze --jsonl passages.jsonl > results.jsonl
    """
    from pipeline.analysis.rank import SHIPPED, load  # loads spaCy

    raw = _read_input(source)
    # analyze never touches the database: no model trained for one is looked up
    path = ranker_path or state.config.settings.process.ranker
    analyzer = state.analyzer(use_model, ranker=load(path) if path else SHIPPED)
    if not jsonl:
        analysis = next(analyzer.analyze_many([_document_passage({"text": raw}, language)]))
        echo_json(_analysis_json(source, analysis, signals), indent=None)
        return
    bad = 0
    docs: list[tuple[Any, Passage]] = []
    for lineno, line in json_lines(raw):  # "\n" only: U+2028 may sit inside a JSON string
        if not line.strip():
            continue
        try:
            record = parse_json_line(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            docs.append((record.get("id", lineno), _document_passage(record, language)))
        except (ValueError, DealwatchError) as exc:  # JsonLineError is a ValueError
            bad += 1
            click.echo(f"{source}:{lineno}: skipped: {exc}", err=True)
            docs.append((lineno, Passage("")))
    for (doc_id, _), analysis in zip(docs, analyzer.analyze_many(t for _, t in docs),
                                        strict=True):
        echo_json(_analysis_json(doc_id, analysis, signals), indent=None)
    if bad:
        fail(f"{source}: {bad} line(s) could not be read (see above)")


@click.command()
@click.option("--gold", "gold_files", multiple=True, metavar="FILE.jsonl",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Labelled passages in the eval format (repeatable).")
@click.option("--from-reviews", is_flag=True,
              help="Also learn from the reviewers' decisions in the database (--db).")
@click.option("--no-base", is_flag=True,
              help="Leave out the project's own labelled passages (shipped with dealwatch).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="PATH", help="Where to write the model (JSON).")
@model_option("Use the statistical spaCy model for labelled passages: auto, never, required.")
@pass_state
def train(state: State, gold_files: tuple[Path, ...], from_reviews: bool, no_base: bool, out: Path,
          use_model: str | None) -> None:
    """Train the ranker that scores candidates: the probability that a reviewer confirms.

    It learns from the project's own labelled passages, the labelled files given with --gold, and
    with --from-reviews the confirmed and rejected candidates of the database; a model trained
    from reviews becomes the default ranker of `process` for that database.

    \b
    Example:
        dealwatch train --from-reviews --out data/ranker.json
        dealwatch process --rescore
        dealwatch train --gold more_passages.jsonl --out ranker.json
    """
    from pipeline.jobs.train import train_ranker  # loads spaCy

    report = train_ranker(state.config, out, gold_files=gold_files, base=not no_base,
                          reviews_db=state.db_path if from_reviews else None, use_model=use_model)
    for source, counts in report.sources.items():
        click.echo(f"trained on {source}: {counts['examples']} candidates, "
                   f"{counts['positive']} confirmed")
    click.echo(f"in sample: accuracy {report.accuracy or 0:.2f}, average precision "
               f"{report.average_precision or 0:.2f} ({report.features} features)")
    if report.default_ranker:
        click.echo(f"wrote {out}: the default ranker of this database from now on "
                   "(dealwatch process --rescore ranks the stored candidates with it)")
    else:
        click.echo(f"wrote {out}")


@click.command("eval")
@click.argument("gold", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Metrics as JSON.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Score above which a candidate counts (default: rules.toml's threshold).")
@model_option()
@pass_state
def eval_command(state: State, gold: Path, as_json: bool, threshold: float | None,
                 use_model: str | None) -> None:
    """Score the detector on labelled passages (JSONL with is_deal yes/no/aggregate).

    \b
    Example:
        dealwatch eval labelled_passages.jsonl
        dealwatch eval gold.jsonl --json --model never
    """
    records = load_gold(gold)
    metrics = evaluate(records, state.analyzer(use_model), threshold=threshold)
    if as_json:
        echo_json(metrics)
    else:
        click.echo(format_report(metrics))


COMMANDS = (analyze, train, eval_command)
