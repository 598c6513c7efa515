"""The `dealwatch` command line: every stage, the nightly run, the demo, the queue."""

from __future__ import annotations

import getpass
import json
import logging
import shutil
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from models.errors import DealwatchError
from models.records import Passage
from pipeline.config import SHIPPED_CONFIG_DIR, Config, load_config, read_watchlist, resolve_db_path
from pipeline.review.decisions import REJECT_REASONS
from pipeline.review.export import FORMATS as EXPORT_FORMATS
from pipeline.review.present import language_note, money
from pipeline.storage.store import CANDIDATE_STATUSES, QueueFilter, Store, is_busy

logger = logging.getLogger(__name__)

MODEL_CHOICES = click.Choice(["auto", "never", "required"])


class UserError(DealwatchError):
    """A problem the user can fix; shown as one line, exit code 1."""


def fail(message: str) -> NoReturn:
    raise UserError(message)


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop like Ctrl-C, so runs are recorded and subprocesses end with us."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated("stopped by SIGTERM")


class DealwatchGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt as exc:
            click.echo(str(exc) or "interrupted", err=True)
            sys.exit(143 if isinstance(exc, Terminated) else 130)
        except DealwatchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            click.echo(f"error: the database is busy ({exc}): another process has been writing "
                       "for longer than the busy timeout; try again", err=True)
            sys.exit(1)


class State:
    """What every command needs, built lazily from the global options."""

    def __init__(self, db: str | None, config_dir: str | None, verbose: int):
        self.db_option = db
        self.config_option = config_dir
        self.verbose = verbose
        self.reviewer: str | None = None  # --reviewer of the review and deals groups
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_option)
        return self._config

    @property
    def reviewer_name(self) -> str:
        """Who decides: --reviewer, else $DEALWATCH_REVIEWER (the option's envvar), else the OS
        user."""
        if self.reviewer:
            return self.reviewer
        try:
            return getpass.getuser()
        except (OSError, KeyError):
            fail("cannot tell who you are: pass --reviewer NAME or set DEALWATCH_REVIEWER")

    @property
    def db_path(self) -> Path:
        return resolve_db_path(self.db_option, self.config.settings)

    @contextmanager
    def store(self) -> Iterator[Store]:
        store = Store(self.db_path, self.config.settings.database.busy_timeout_ms)
        try:
            yield store
        finally:
            store.close()

    @contextmanager
    def recorded_run(self, kind: str, sources: list[str] | None = None
                     ) -> Iterator[tuple[Store, RunRecord]]:
        """A writing run: the database's run lock, a `runs` row, its outcome and counters."""
        from pipeline.jobs.lock import RunLock

        with RunLock(self.db_path, kind), self.store() as store:
            store.abort_stale_runs()
            record = RunRecord(store.start_run(kind, sources))
            try:
                yield store, record
            except BaseException as exc:
                outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                store.finish_run(record.id, outcome, record.counters,
                                 str(exc) or type(exc).__name__)
                raise
            store.finish_run(record.id, record.outcome, record.counters)

    def analyzer(self, use_model: str | None = None, ranker: Any = "shipped") -> Any:
        """The analysis chain; ranker: a loaded Ranker, "shipped", or None (the rule score)."""
        from pipeline.analysis.analyze import Analyzer

        mode = use_model or self.config.settings.process.use_model
        analyzer = Analyzer.from_config(self.config, use_model=mode, ranker=ranker)
        logger.info("analyser %s", analyzer.version)
        return analyzer

    def ranker_choices(self, store: Store) -> list[str]:
        """Which model scores candidates, in order of preference: the setting process.ranker,
        the newest model trained for this database, the shipped one."""
        from pipeline.analysis.rank import SHIPPED

        choices: list[str] = []
        if self.config.settings.process.ranker:
            choices.append(self.config.settings.process.ranker)
        newest = store.newest_ranker()
        if newest:
            choices.append(newest["path"])
        return [*choices, SHIPPED]

    def default_ranker(self, store: Store) -> Any:
        from pipeline.analysis.rank import choose_ranker

        ranker, name = choose_ranker(self.ranker_choices(store))
        logger.info("ranking with %s", name)
        return ranker


class RunRecord:
    """What a run row will say: crawl and processing counters, and whether it went well."""

    def __init__(self, run_id: int):
        self.id = run_id
        self.counters: dict[str, Any] = {}
        self.outcome = "ok"

    def add_crawl(self, report: Any) -> None:
        self.counters["crawl"] = report.sources
        if report.attention:
            self.counters["attention"] = report.attention
        if report.budget_exhausted:
            self.counters["budget_exhausted"] = report.budget_exhausted
        if not report.ok:
            self.outcome = "errors"

    def add_process(self, report: Any) -> None:
        self.counters["process"] = report.as_dict()
        if report.failures:
            self.outcome = "errors"


pass_state = click.make_pass_decorator(State)


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@click.group(cls=DealwatchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="DEALWATCH_DB", metavar="PATH",
              help="SQLite database file (env DEALWATCH_DB; default data/dealwatch.db).")
@click.option("--config", "config_dir", envvar="DEALWATCH_CONFIG", metavar="DIR",
              help="Config directory (env DEALWATCH_CONFIG; default: the shipped config/). "
                   "A file it lacks falls back to the shipped default.")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="dealwatch")
@click.pass_context
def main(ctx: click.Context, db: str | None, config_dir: str | None, verbose: int) -> None:
    """dealwatch: watch the news for technology deals between watchlist vendors and foreign
    governments, and queue them for review.

    \b
    Example:
        dealwatch demo                 # crawl the bundled demo site and print the queue
        dealwatch run                  # the nightly job: crawl every enabled source, process
        dealwatch queue --limit 20     # what reviewers see first
    """
    _configure_logging(verbose)
    ctx.obj = State(db, config_dir, verbose)


# --- set-up ---------------------------------------------------------------------------------


@main.command()
@click.option("--write-config", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also copy the shipped config files into DIR, to edit and pass with --config.")
@pass_state
def init(state: State, write_config: Path | None) -> None:
    """Create the database (and optionally a config directory to edit).

    \b
    Example:
        dealwatch --db data/dealwatch.db init --write-config myconfig
    """
    if write_config:
        if write_config.exists() and any(write_config.iterdir()):
            fail(f"{write_config}: directory exists and is not empty")
        shutil.copytree(SHIPPED_CONFIG_DIR, write_config, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        click.echo(f"wrote config files to {write_config}/ (use --config {write_config})")
    with state.store() as store:
        store.sync_sources(state.config.sources)
        click.echo(f"database {state.db_path} ready (schema version {store.schema_version()})")


@main.command()
@pass_state
def migrate(state: State) -> None:
    """Apply pending database migrations (opening the database does this too).

    \b
    Example:
        dealwatch --db data/dealwatch.db migrate
    """
    store = Store(state.db_path, state.config.settings.database.busy_timeout_ms, migrate=False)
    try:
        applied = store.migrate()
        for version, name in applied:
            click.echo(f"applied {version:03d} {name}")
        click.echo(f"{state.db_path}: schema version {store.schema_version()}"
                   + ("" if applied else " (up to date)"))
    finally:
        store.close()


@main.command("check-config")
@pass_state
def check_config(state: State) -> None:
    """Validate every config file; name file, field and problem on error.

    \b
    Example:
        dealwatch --config myconfig check-config
    """
    cfg = state.config
    vendors = sum(1 for e in cfg.watchlist if e.type == "vendor")
    click.echo(f"config ok: {cfg.directory}")
    for name, path in cfg.files.items():
        click.echo(f"  {name:<14} {path}")
    click.echo(f"  sources        {len(cfg.sources)} ({len(cfg.enabled_sources())} enabled)")
    click.echo(f"  watchlist      {len(cfg.watchlist)} entries ({vendors} vendors)")
    for lang, pack in sorted(cfg.languages.items()):
        click.echo(f"  language {lang:<5} " + ", ".join(f"{name}" for name in sorted(pack.files))
                   + f" ({len(pack.cue_patterns)} cue patterns)")


# --- the watchlist --------------------------------------------------------------------------


@main.group()
def watchlist() -> None:
    """List and add watchlist entries (vendors, agencies, state operators).

    The watchlist is JSON Lines in the config dir's watchlist/ folder, one entry a line:
    {"id", "name", "aliases", "type": "vendor"|"agency"|"org", "country", "counterpart_type"}.

    \b
    Example:
        dealwatch watchlist list --type vendor
        dealwatch --config myconfig watchlist add nuctech --name Nuctech --type vendor --country CN
    """


@watchlist.command("list")
@click.option("--type", "kind", type=click.Choice(["vendor", "agency", "org"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, as in the files.")
@pass_state
def watchlist_list(state: State, kind: str | None, as_json: bool) -> None:
    """Show the watchlist entries in effect.

    \b
    Example:
        dealwatch watchlist list --type vendor
    """
    for entry in state.config.watchlist:
        if kind and entry.type != kind:
            continue
        if as_json:
            click.echo(entry.model_dump_json(exclude_defaults=True))
        else:
            extra = f" aka {', '.join(entry.aliases)}" if entry.aliases else ""
            typed = f" {entry.counterpart_type}" if entry.counterpart_type else ""
            click.echo(f"{entry.id:<24} {entry.type:<6} {entry.country or '--'}{typed}  "
                       f"{entry.name}{extra}")


@watchlist.command("add")
@click.argument("entry_id", metavar="ID")
@click.option("--name", required=True, help="The name as news writes it.")
@click.option("--alias", "aliases", multiple=True, help="Another name (repeatable).")
@click.option("--type", "kind", type=click.Choice(["vendor", "agency", "org"]), required=True)
@click.option("--country", default=None, help="ISO 3166-1 alpha-2 code, e.g. CN or KE.")
@click.option("--counterpart-type", default=None,
              type=click.Choice(["government", "ministry", "agency", "soe", "subnational",
                                 "intergovernmental", "unknown"]),
              help="For government bodies and state operators.")
@click.option("--file", "filename", default="local.jsonl", show_default=True,
              help="File in the config dir's watchlist/ folder (a new name adds to the shipped "
                   "files; a shipped name would replace that file).")
@pass_state
def watchlist_add(state: State, entry_id: str, name: str, aliases: tuple[str, ...], kind: str,
                  country: str | None, counterpart_type: str | None, filename: str) -> None:
    """Add an entry to the watchlist of the config dir (--config, else the shipped config/).

    \b
    Example:
        dealwatch --config myconfig watchlist add nuctech --name Nuctech --alias "Nuctech Co" \\
            --type vendor --country CN
    """
    from pydantic import ValidationError

    from models.config import WatchlistEntry

    if not filename.endswith(".jsonl") or "/" in filename:
        fail(f"--file: a file name ending in .jsonl, not {filename!r}")
    try:
        entry = WatchlistEntry(id=entry_id, name=name, aliases=list(aliases), type=kind,  # type: ignore[arg-type]
                               country=country.upper() if country else None,
                               counterpart_type=counterpart_type)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        fail(f"watchlist entry {entry_id!r}: {'.'.join(map(str, err['loc']))}: {err['msg']}")
    cfg = state.config
    if any(e.id == entry.id for e in cfg.watchlist):
        fail(f"watchlist: id {entry.id!r} is already defined")
    path = cfg.directory / "watchlist" / filename
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    if before and not before.endswith("\n"):
        before += "\n"
    after = before + entry.model_dump_json(exclude_defaults=True) + "\n"
    # Check the file as a whole before it replaces the old one: a bad edit never breaks config.
    read_watchlist([path], text=after)
    _write_atomically(path, after.encode("utf-8"))
    click.echo(f"added {entry.id} to {path}; `dealwatch process --reanalyse` applies it to "
               "stored articles")


# --- crawl, process, run --------------------------------------------------------------------


def _crawl(state: State, store: Store, source_ids: list[str] | None, run_id: int) -> Any:
    from pipeline.ingest.crawl import run_crawl

    cfg = state.config
    for sid in source_ids or []:
        cfg.source(sid)  # unknown ids fail before anything starts
    store.sync_sources(cfg.sources)
    return run_crawl(cfg, state.db_path, source_ids or None, run_id=run_id)


def _print_crawl(report: Any) -> None:
    for sid, counters in sorted(report.sources.items()):
        parts = [f"{k}={v}" for k, v in sorted(counters.items()) if not isinstance(v, dict) and v]
        errors = counters.get("errors") or {}
        if errors:
            parts.append("errors: " + ", ".join(f"{k}={v}" for k, v in sorted(errors.items())))
        click.echo(f"crawl {sid}: " + (" ".join(parts) or "nothing fetched"), err=True)
    for sid, reason in sorted(report.attention.items()):
        click.echo(f"needs attention: {sid}: {reason}", err=True)
    if report.budget_exhausted:
        click.echo(f"the run's budget ran out ({report.budget_exhausted}); what was fetched is "
                   "stored and the next run goes on from there", err=True)


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal; nothing in cron or a pipe."""
    if not sys.stderr.isatty() or total == 0:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _process(state: State, store: Store, use_model: str | None, reanalyse: bool = False) -> Any:
    from pipeline.jobs.process import process_pages, reanalyse_articles

    settings = state.config.settings.process
    analyzer = state.analyzer(use_model, ranker=state.default_ranker(store))
    if reanalyse:
        total = store.count("articles")
        with _progress(total, "re-analysing") as progress:
            return reanalyse_articles(store, analyzer, batch_size=settings.batch_size,
                                      progress=progress)
    total = store.count_pages_to_process()
    with _progress(total, "processing") as progress:
        report = process_pages(store, analyzer, batch_size=settings.batch_size,
                               min_text_chars=settings.min_text_chars,
                               max_text_chars=settings.max_text_chars,
                               dedup=state.config.settings.dedup, progress=progress)
    store.prune_html(state.config.settings.retention.html_days)
    return report


def _print_process(report: Any) -> None:
    c = report.counters
    click.echo(
        f"processed {c['pages']} pages: {c['articles']} articles "
        f"({c['near_duplicates']} copies of stories already seen), {c['not_article']} not "
        f"articles, {c['blocked']} blocked by bot or consent walls, {c['duplicates']} exact "
        f"duplicates, {c['failed']} failed; {c['candidates_new']} new candidates", err=True)
    if c["too_long"]:
        click.echo(f"  {c['too_long']} articles too long: their first process.max_text_chars "
                   "characters were analysed", err=True)
    if c["unsupported_language"]:
        click.echo(f"  {c['unsupported_language']} articles in a language dealwatch does not "
                   "read were not analysed (`dealwatch status` counts them by language)", err=True)
    for url, reason in report.failures[:10]:
        click.echo(f"  failed {url}: {reason}", err=True)


@main.command()
@click.option("--source", "sources", multiple=True, metavar="ID",
              help="Crawl only this source (repeatable). Default: every enabled source.")
@pass_state
def crawl(state: State, sources: tuple[str, ...]) -> None:
    """Fetch new articles from the configured sources (Scrapy, in a subprocess).

    \b
    Example:
        dealwatch crawl --source techcabal
    """
    with state.recorded_run("crawl", list(sources)) as (store, record):
        report = _crawl(state, store, list(sources), record.id)
        record.add_crawl(report)
    _print_crawl(report)
    if not report.ok:
        fail("the crawl finished with errors that need attention (see above)")


@main.command()
@click.option("--reanalyse", is_flag=True,
              help="Tag and detect again on every stored article (after a rules or watchlist "
                   "change); nothing is re-fetched.")
@click.option("--rescore", is_flag=True,
              help="Rank every stored candidate again from its stored fields (after training a "
                   "ranker); nothing is re-extracted or re-analysed.")
@click.option("--ranker", "ranker_path", default=None, metavar="PATH",
              help="With --rescore: this model (default: process.ranker, else the newest "
                   "trained for this database, else the shipped one).")
@click.option("--model", "use_model", type=MODEL_CHOICES, default=None,
              help="Use the statistical spaCy model: auto (when installed), never, required.")
@pass_state
def process(state: State, reanalyse: bool, rescore: bool, ranker_path: str | None,
            use_model: str | None) -> None:
    """Extract, tag and detect on the pages fetched since the last run.

    \b
    Example:
        dealwatch process
        dealwatch process --reanalyse     # after editing config/rules.toml
        dealwatch process --rescore       # after dealwatch train --from-reviews
    """
    if ranker_path and not rescore:
        raise click.UsageError("--ranker goes with --rescore (set process.ranker for processing)")
    if rescore and reanalyse:
        raise click.UsageError("--rescore and --reanalyse: choose one (--reanalyse scores too)")
    if rescore:
        _rescore(state, ranker_path)
        return
    with state.recorded_run("process") as (store, record):
        report = _process(state, store, use_model, reanalyse)
        record.add_process(report)
    _print_process(report)


def _rescore(state: State, ranker_path: str | None) -> None:
    from pipeline.analysis.rank import SHIPPED, RankerError, choose_ranker, load
    from pipeline.jobs.process import rescore_candidates

    with state.recorded_run("rescore") as (store, record):
        choice = ranker_path or state.ranker_choices(store)[0]
        if choice == SHIPPED:  # no model of this database's: the shipped one, else the rule score
            ranker, name = choose_ranker([SHIPPED])
        else:
            try:
                # A model that fails to load changes nothing: the stored scores are those of the
                # ranker used before it.
                ranker, name = load(choice), choice
            except RankerError as exc:
                fail(f"{exc}; nothing was rescored (the previous ranker's scores stay)")
        total = store.count("candidates")
        with _progress(total, "rescoring") as progress:
            report = rescore_candidates(store, ranker, state.config.rules.scoring.threshold,
                                        progress=progress)
        record.counters["rescore"] = report.as_dict()
    c = report.counters
    click.echo(f"rescored {c['candidates']} candidates with {name}: {c['changed']} changed, "
               f"{c['queued']} in the queue, {c['hidden']} below the threshold "
               f"{state.config.rules.scoring.threshold:.2f}", err=True)


@main.command()
@click.option("--source", "sources", multiple=True, metavar="ID",
              help="Only this source (repeatable). Default: every enabled source.")
@click.option("--model", "use_model", type=MODEL_CHOICES, default=None,
              help="Use the statistical spaCy model: auto, never, required.")
@pass_state
def run(state: State, sources: tuple[str, ...], use_model: str | None) -> None:
    """The nightly job: crawl, then process. Exit 1 when something needs a person's attention.

    \b
    Example (crontab):
        30 2 * * *  cd /srv/dealwatch && .venv/bin/dealwatch run >> data/run.log 2>&1
    """
    with state.recorded_run("run", list(sources)) as (store, record):
        crawl_report = _crawl(state, store, list(sources), record.id)
        record.add_crawl(crawl_report)
        _print_crawl(crawl_report)
        process_report = _process(state, store, use_model)
        record.add_process(process_report)
    _print_process(process_report)
    if record.outcome != "ok":
        fail(f"run {record.id} finished with errors that need attention (see above; "
             "`dealwatch status` lists the sources)")


@main.command()
@pass_state
def schedule(state: State) -> None:
    """Run the nightly job on the schedule in settings.toml, in the foreground.

    For systemd or supervisor: each run is a `dealwatch run` subprocess; runs never overlap
    (also not with a run started by hand or by cron); a run missed while the scheduler was down
    runs once at start-up when it was due within [schedule] catch_up_grace_hours. SIGTERM or
    Ctrl-C stops it cleanly.

    \b
    Example:
        dealwatch --db /srv/dealwatch/data/dealwatch.db schedule
    """
    from pipeline.jobs.schedule import NightlyScheduler, run_command

    settings = state.config.settings.schedule
    db_path = state.db_path
    with state.store():
        pass  # a database we cannot open fails now, not at 02:30

    def last_run_started() -> Any:
        with state.store() as store:
            return store.last_run_started()

    scheduler = NightlyScheduler(settings, run_command(db_path, state.config.directory),
                                 last_run_started)

    def ready(next_run: Any) -> None:
        click.echo(f"dealwatch scheduler: `{settings.cron}` ({settings.timezone}); next run at "
                   f"{next_run.isoformat() if next_run else 'never'}; database {db_path}",
                   err=True)

    scheduler.serve(on_ready=ready)
    click.echo("dealwatch scheduler stopped", err=True)


def _status_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        c = run.get("counters") or {}
        crawl = c.get("crawl") or {}
        process = c.get("process") or {}
        rows.append({
            "id": run["id"], "kind": run["kind"], "started_at": run["started_at"],
            "finished_at": run["finished_at"], "outcome": run["outcome"],
            "sources": sorted(crawl) or run.get("sources") or [],
            "requests": sum(int(v.get("requests", 0)) for v in crawl.values()),
            "not_modified": sum(int(v.get("not_modified", 0)) for v in crawl.values()),
            "articles_new": sum(int(v.get("articles_new", 0)) for v in crawl.values()),
            "articles": int(process.get("articles", 0)),
            "near_duplicates": int(process.get("near_duplicates", 0)),
            "blocked": int(process.get("blocked", 0)),
            "candidates_new": int(process.get("candidates_new", 0)),
            "message": run.get("message"),
        })
    return rows


@main.command()
@click.option("--runs", "limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many recent runs to show and judge.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts and monitoring.")
@click.option("--check", is_flag=True, help="Exit 1 when a source needs attention (monitoring).")
@pass_state
def status(state: State, limit: int, as_json: bool, check: bool) -> None:
    """The last runs, and the sources that need attention: errors, no new articles for several
    runs, falling extraction yield, bot or consent walls.

    \b
    Example:
        dealwatch status
        dealwatch status --check || mail -s "dealwatch needs a look" ops@example.org
    """
    from pipeline.ingest.health import flags

    settings = state.config.settings.status
    with state.store() as store:
        runs = store.runs(limit)
        counts = store.counts()
        unsupported = store.unsupported_languages()
    found = flags([r for r in runs if r["outcome"] != "running"], settings.stale_after_runs,
                  settings.min_pages_for_yield)
    rows = _status_rows(runs)
    if as_json:
        click.echo(json.dumps({"runs": rows, "attention": [f.as_dict() for f in found],
                               "counts": counts, "unsupported_languages": unsupported},
                              indent=2, ensure_ascii=False))
    else:
        if not rows:
            click.echo("no runs yet: `dealwatch run` (or `dealwatch demo`) starts one")
        for r in rows:
            took = ""
            if r["finished_at"]:
                started = time.strptime(r["started_at"], "%Y-%m-%dT%H:%M:%SZ")
                finished = time.strptime(r["finished_at"], "%Y-%m-%dT%H:%M:%SZ")
                took = f" {time.mktime(finished) - time.mktime(started):.0f}s"
            click.echo(
                f"run {r['id']:>4} {r['kind']:<7} {r['started_at']}{took} {r['outcome']:<8} "
                f"requests {r['requests']}, 304s {r['not_modified']}, new articles "
                f"{r['articles_new']}, articles {r['articles']} ({r['near_duplicates']} copies), "
                f"walls {r['blocked']}, new candidates {r['candidates_new']}"
                + (f" — {r['message']}" if r["message"] else ""))
        click.echo(f"\npending candidates: {counts['candidates_pending']}; articles: "
                   f"{counts['articles']}; pages: {counts['pages']}")
        if unsupported:
            click.echo(f"articles not analysed, in a language dealwatch does not read: "
                       f"{sum(unsupported.values())} ("
                       + ", ".join(f"{code} {n}" for code, n in unsupported.items()) + ")")
        if found:
            click.echo("\nneeds attention:")
            for f in found:
                click.echo(f"  {f.source}: {f.problem.replace('_', ' ')}: {f.detail}")
        else:
            click.echo("no source needs attention")
    if check and found:
        sys.exit(1)


# --- the queue ------------------------------------------------------------------------------


def _prog() -> str:
    """How to call this dealwatch again: `dealwatch` when that is the one on PATH, else its path
    (after `make demo` it lives in .venv/bin, which is not on PATH)."""
    argv0 = Path(sys.argv[0])
    on_path = shutil.which("dealwatch")
    if argv0.name != "dealwatch" or (on_path and Path(on_path).resolve() == argv0.resolve()):
        return "dealwatch"
    try:
        return str(argv0.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(argv0)


def _language_code(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An ISO 639-1 code from what a user typed ("es", "pt-BR", "fra")."""
    from pipeline.language import normalise_language

    if value is None:
        return None
    code = normalise_language(value)
    if code is None:
        raise click.BadParameter(f"{value!r} is no language code (ISO 639-1, e.g. es, pt, fr)")
    return code


def _lang_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--lang", "language", default=None, metavar="CODE",
                        callback=_language_code, help=help_text)


def render_queue(rows: list[dict[str, Any]], out: Callable[[str], None]) -> None:
    """The review queue as text: one block per candidate, best first."""
    if not rows:
        out("the queue is empty")
        return
    for rank, row in enumerate(rows, 1):
        vendors = ", ".join(row["vendors"] or ([row["vendor"]] if row["vendor"] else []))
        counterpart = row["counterpart"] or "-"
        if row["counterpart_type"]:
            counterpart += f" ({row['counterpart_type']})"
        types = ", ".join(row["deal_types"] or []) or "-"
        fields = [
            f"{row['score']:.2f}",
            row["kind"],
            f"vendor: {vendors or '-'}",
            f"country: {row['country'] or '-'}",
            f"counterpart: {counterpart}",
            f"type: {types}",
            f"stage: {row['stage'] or '-'}",
        ]
        if row.get("language"):
            fields.insert(2, f"lang: {row['language']}")
        if row.get("value") is not None:
            fields.append(f"value: {money(row['value'], row.get('currency'))}")
        if row.get("year"):
            fields.append(f"year: {row['year']}")
        out(f"{rank:>3}. [{row['status']}] #{row['id']}  " + "  ".join(fields))
        out(f"     “{' '.join(row['sentence'].split())}”")
        out(f"     {row['url']}")
        others = [c for c in row.get("copies") or [] if c["url"] != row["url"]]
        for copy in others:
            site = f" ({copy['site']})" if copy.get("site") else ""
            out(f"     also: {copy['url']}{site}")


QUEUE_JSON_FIELDS = (
    "id", "status", "kind", "score", "vendor", "vendors", "country", "counterpart",
    "counterpart_type", "deal_type", "deal_types", "stage", "value", "currency", "year",
    "sentence", "start", "end", "url", "title", "published", "site", "article_id", "cluster_id",
    "copies", "reasons", "queued", "language",
)


@main.command()
@click.option("--status", type=click.Choice([*CANDIDATE_STATUSES, "all"]), default="pending",
              show_default=True, help="Which candidates to list.")
@click.option("--kind", type=click.Choice(["deal", "aggregate"]), default=None,
              help="Only deals or only aggregates.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="How many (0 for all).")
@click.option("--all", "show_all", is_flag=True,
              help="Also the candidates scored below the queue threshold (hidden by default).")
@click.option("--min-score", type=click.FloatRange(0, 1), default=None, metavar="P",
              help="Only candidates scored at least P, below the threshold too (implies --all).")
@_lang_option("Only candidates from articles in this language (ISO 639-1: es, pt, fr, en).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def queue(state: State, status: str, kind: str | None, limit: int, show_all: bool,
          min_score: float | None, language: str | None, as_json: bool) -> None:
    """The review queue: candidates ranked by score, with their evidence.

    Pending candidates scored below the queue threshold (rules.toml [scoring] threshold) are
    kept but hidden; --all or --min-score shows them.

    \b
    Example:
        dealwatch queue --limit 10
        dealwatch queue --min-score 0.2       # the weak candidates too
        dealwatch queue --lang es             # from Spanish articles only
        dealwatch queue --status confirmed --json | jq '.[].vendor'
    """
    with state.store() as store:
        rows = store.queue(QueueFilter(status=None if status == "all" else status, kind=kind,
                                       language=language, limit=limit or None,
                                       hidden=show_all or min_score is not None,
                                       min_score=min_score))
        hidden = 0 if show_all or min_score is not None or as_json else store.count_hidden()
    if hidden:
        click.echo(f"({hidden} pending candidates scored below the queue threshold are hidden: "
                   "--all shows them)", err=True)
    if as_json:
        click.echo(json.dumps([{k: r.get(k) for k in QUEUE_JSON_FIELDS} for r in rows],
                              ensure_ascii=False, indent=2))
    else:
        render_queue(rows, click.echo)


# --- review from the terminal ---------------------------------------------------------------
#
# The same functions as the web UI (pipeline.review.decisions, pipeline.review.registry), the same audit.
# No run lock: reviewing goes on while the nightly run writes (WAL and the busy timeout share the file).


def _parse_sets(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
                ) -> dict[str, str]:
    edits: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"FIELD=VALUE, not {item!r}", ctx, param)
        if name in edits:
            raise click.BadParameter(f"{name} is set twice", ctx, param)
        edits[name] = value
    return edits


def _set_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--set", "edits", multiple=True, metavar="FIELD=VALUE",
                        callback=_parse_sets, help=help_text)


class DealRef(click.ParamType):
    """A deal by row id (3) or registry id (dw-000003)."""

    name = "DEAL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        text = text[3:] if text.startswith("dw-") else text
        if not text.isdigit():
            self.fail(f"a deal id such as dw-000003 or 3, not {value!r}", param, ctx)
        return int(text)


DEAL = DealRef()


def _reviewer(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter("an empty name", ctx, param)
    return value.strip() if value else None


def _reviewer_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--reviewer", metavar="NAME", envvar="DEALWATCH_REVIEWER",
                        callback=_reviewer,
                        help="Who decides, for the audit (env DEALWATCH_REVIEWER; default: "
                             "your OS user name).")(f)


def _deal_label(store: Store, deal_id: int | None) -> str | None:
    deal = store.deal(deal_id) if deal_id is not None else None
    return deal["deal_id"] if deal else None


def _print_outcomes(store: Store, outcomes: list[Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([{
            "decision": o.decision, "status": o.status, "candidate_ids": o.candidate_ids,
            "deal_id": _deal_label(store, o.deal_id), "batch": o.batch,
            "versions": {str(k): v for k, v in o.versions.items()},
        } for o in outcomes], ensure_ascii=False, indent=2))
        return
    for o in outcomes:
        lead, copies = o.candidate_ids[0], o.candidate_ids[1:]
        verb = {"undo": f"undone: #{lead} is {o.status} again"}.get(o.decision, f"{o.status} #{lead}")
        line = verb + (f" with its {len(copies)} cop{'y' if len(copies) == 1 else 'ies'} "
                       f"({', '.join(f'#{c}' for c in copies)})" if copies else "")
        label = _deal_label(store, o.deal_id)
        if label:
            line += f"; filed under {label}"
        click.echo(line)


REVIEW_JSON_FIELDS = (*QUEUE_JSON_FIELDS, "version", "reviewed_by", "reviewed_at", "reason", "note",
                      "deal_id")


@main.group()
@_reviewer_option
@pass_state
def review(state: State, reviewer: str | None) -> None:
    """Review candidates from the terminal: list, show, confirm, reject, defer, edit, undo.

    Decisions go through the same code as the web UI and land in the same audit (`reviews`),
    under --reviewer. A syndicated story's copies are decided with it. Reviews work while the
    nightly run goes on.

    \b
    Example:
        dealwatch review list --vendor huawei --country KE
        dealwatch review show 12
        dealwatch --db data/dealwatch.db review --reviewer ann confirm 12 --set stage=signed
        dealwatch review reject 13 --reason not_a_deal --note "a phone launch"
        dealwatch review undo
    """
    state.reviewer = reviewer


@review.command("list")
@click.option("--status", type=click.Choice([*CANDIDATE_STATUSES, "all"]), default="pending",
              show_default=True, help="Which candidates to list.")
@click.option("--vendor", default=None, metavar="ID", help="Only this watchlist vendor.")
@click.option("--country", default=None, metavar="CC", help="Only this country (ISO alpha-2).")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="How many (0 for all).")
@click.option("--all", "show_all", is_flag=True,
              help="Also the candidates scored below the queue threshold (hidden by default).")
@click.option("--min-score", type=click.FloatRange(0, 1), default=None, metavar="P",
              help="Only candidates scored at least P, below the threshold too (implies --all).")
@_lang_option("Only candidates from articles in this language (ISO 639-1: es, pt, fr, en).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_list(state: State, status: str, vendor: str | None, country: str | None, limit: int,
                show_all: bool, min_score: float | None, language: str | None,
                as_json: bool) -> None:
    """Candidates best first, one entry per story (its copies listed with it).

    \b
    Example:
        dealwatch review list --status deferred
        dealwatch review list --lang pt --country AO
        dealwatch review list --vendor zte --json | jq '.[].id'
    """
    with state.store() as store:
        rows = store.queue(QueueFilter(status=None if status == "all" else status,
                                       vendor=vendor, country=country.upper() if country else None,
                                       language=language,
                                       limit=limit or None, hidden=show_all or min_score is not None,
                                       min_score=min_score))
    if as_json:
        click.echo(json.dumps([{k: r.get(k) for k in REVIEW_JSON_FIELDS} for r in rows],
                              ensure_ascii=False, indent=2))
    else:
        render_queue(rows, click.echo)


def _context(row: dict[str, Any], width: int = 240) -> dict[str, Any]:
    """The evidence sentence with the text around it, when the offsets point at it."""
    from pipeline.review.present import evidence_span

    text = row.get("article_text") or ""
    evidence = {"sentence": row["sentence"], "start": row.get("start"), "end": row.get("end"),
                "before": "", "after": ""}
    span = evidence_span(text, row["sentence"], row.get("start"), row.get("end"))
    if span:
        start, end = span
        evidence["before"] = " ".join(text[max(0, start - width):start].split())
        evidence["after"] = " ".join(text[end:end + width].split())
    return evidence


def _candidate_view(store: Store, candidate_id: int) -> dict[str, Any]:
    from pipeline.review.decisions import EDITABLE_FIELDS, history
    from pipeline.review.present import country_name
    from pipeline.review.registry import suggest_deals

    row = store.candidate(candidate_id)
    if row is None:
        fail(f"no candidate #{candidate_id}")
    copies = store.cluster_copies([row["cluster_id"]]).get(row["cluster_id"], []) \
        if row.get("cluster_id") is not None else []
    return {
        "candidate": {
            "id": row["id"], "status": row["status"], "version": row["version"],
            "kind": row["kind"], "score": row["score"],
            **{name: row.get(name) for name in EDITABLE_FIELDS},
            "country_name": country_name(row.get("country")),
            "reviewed_by": row.get("reviewed_by"), "reviewed_at": row.get("reviewed_at"),
            "reason": row.get("reason"), "note": row.get("note"),
            "deal_id": _deal_label(store, row.get("deal_id")), "signals": row.get("signals"),
            "reasons": row.get("reasons") or [], "queued": bool(row.get("queued", 1)),
        },
        "article": {name: row.get(name) for name in (
            "article_id", "title", "url", "canonical_url", "published", "site", "author",
            "language", "language_declared", "language_source", "cluster_id")},
        "evidence": _context(row),
        "entities": store.entities_of(row["article_id"]),
        "copies": [c for c in copies if c.get("article_id") != row["article_id"]
                   or c.get("copy") != "article"],
        "suggestions": [{
            "deal_id": s.deal["deal_id"], "score": round(s.score, 2), "why": s.why,
            "counterpart": s.deal.get("counterpart"), "deal_types": s.deal.get("deal_types"),
            "stage": s.deal.get("stage"), "first_reported": s.deal.get("first_reported"),
            "last_reported": s.deal.get("last_reported"),
        } for s in suggest_deals(store, row)],
        "history": history(store, candidate_id),
    }


def _render_candidate(view: dict[str, Any], out: Callable[[str], None]) -> None:
    c, a, ev = view["candidate"], view["article"], view["evidence"]
    counterpart = (c["counterpart"] or "-") + (f" ({c['counterpart_type']})"
                                               if c["counterpart_type"] else "")
    country = (c["country"] or "-") + (f" ({c['country_name']})" if c["country_name"] else "")
    out(f"#{c['id']} [{c['status']}] version {c['version']}  score {c['score']:.2f}  {c['kind']}"
        + (f"  deal {c['deal_id']}" if c["deal_id"] else ""))
    out(f"  vendor: {', '.join(c['vendors'] or []) or c['vendor'] or '-'}  country: {country}  "
        f"counterpart: {counterpart}")
    amount = money(c["value"], c["currency"])
    out(f"  type: {', '.join(c['deal_types'] or []) or '-'}  stage: {c['stage'] or '-'}"
        + (f"  value: {amount}" if amount else "") + (f"  year: {c['year']}" if c["year"] else ""))
    if c["reasons"]:
        out(f"  why this score: {'; '.join(c['reasons'])}")
    if not c["queued"]:
        out("  below the queue threshold: hidden from the queue's default view")
    if c["reviewed_by"]:
        out(f"  decided by {c['reviewed_by']} at {c['reviewed_at']}"
            + (f" ({c['reason']})" if c["reason"] else ""))
    if c["note"]:
        out(f"  note: {c['note']}")
    out("")
    out(f"{a['title'] or '(untitled)'}")
    out("  " + ", ".join(x for x in (a["site"], a["published"], a["author"] and f"by {a['author']}")
                         if x) or "  (no date or site)")
    out(f"  language: {language_note(a)}")
    out(f"  {a['url']}")
    out("")
    before = f"…{ev['before']} " if ev["before"] else ""
    after = f" {ev['after']}…" if ev["after"] else ""
    out(f"evidence: {before}“{' '.join(ev['sentence'].split())}”{after}")
    names = sorted({f"{e['text']} ({e['label']}{' ' + e['ent_id'] if e['ent_id'] else ''})"
                    for e in view["entities"]})
    if names:
        out(f"entities: {', '.join(names)}")
    for copy in view["copies"]:
        out(f"copy: {copy['url']}" + (f" ({copy['site']})" if copy.get("site") else "")
            + (" (exact duplicate)" if copy.get("copy") == "exact duplicate" else ""))
    out("")
    if view["suggestions"]:
        out("registry (confirm --deal ID files it there):")
        for s in view["suggestions"]:
            out(f"  {s['deal_id']}  {s['score']:.2f}  {s['counterpart'] or '-'}, "
                f"{', '.join(s['deal_types'] or []) or '-'}, {s['stage'] or '-'}, reported "
                f"{s['first_reported'] or '?'} – {s['last_reported'] or '?'}  ({s['why']})")
    else:
        out("registry: no deal of this vendor in this country yet (confirm starts one)")
    if view["history"]:
        out("history:")
        for h in view["history"]:
            edits = "; ".join(f"{k} {old!r} → {new!r}" for k, (old, new) in (h["edits"] or {}).items())
            out(f"  {h['decided_at']}  {h['reviewer']}  {h['decision']}"
                + (f" ({h['reason']})" if h.get("reason") else "")
                + (f"  {edits}" if edits else "") + (f"  note: {h['note']}" if h.get("note") else ""))


@review.command("show")
@click.argument("candidate_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_show(state: State, candidate_id: int, as_json: bool) -> None:
    """One candidate with its article, evidence in context, copies, the registry deals it may
    belong to, and its decision history.

    \b
    Example:
        dealwatch review show 12
        dealwatch review show 12 --json | jq .suggestions
    """
    with state.store() as store:
        view = _candidate_view(store, candidate_id)
    if as_json:
        click.echo(json.dumps(view, ensure_ascii=False, indent=2))
    else:
        _render_candidate(view, click.echo)


_VERSION_HELP = ("Only if the candidate is still at this version (from `review show`); "
                 "otherwise exit 1 and change nothing.")


@review.command("confirm")
@click.argument("candidate_id", metavar="ID", type=int)
@click.option("--deal", "deal", type=DEAL, default=None,
              help="File it under this registry deal (default: the matching deal, or a new one).")
@click.option("--new-deal", is_flag=True, help="Start a new deal even if one matches.")
@_set_option("Correct a field first (repeatable): vendor, vendors, country, counterpart, "
             "counterpart_type, deal_type, deal_types, stage, value, currency, year.")
@click.option("--note", default=None, help="A note for the audit and the deal.")
@click.option("--expect-version", type=int, default=None, metavar="N", help=_VERSION_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_confirm(state: State, candidate_id: int, deal: int | None, new_deal: bool,
                   edits: dict[str, str], note: str | None, expect_version: int | None,
                   as_json: bool) -> None:
    """Confirm a candidate (and its copies) and file it in the registry.

    \b
    Example:
        dealwatch review confirm 12
        dealwatch review confirm 14 --deal dw-000003 --set stage=completed
        dealwatch review confirm 15 --new-deal --set "counterpart=Kenya Power" --note "2nd phase"
    """
    from pipeline.review.decisions import decide

    if deal is not None and new_deal:
        raise click.UsageError("--deal and --new-deal exclude each other")
    with state.store() as store:
        outcome = decide(store, candidate_id, "confirm", state.reviewer_name,
                         version=expect_version, note=note, edits=edits,
                         deal_id="new" if new_deal else deal, known_vendors=state.config.vendor_ids())
        _print_outcomes(store, [outcome], as_json)


@review.command("reject")
@click.argument("candidate_id", metavar="ID", type=int)
@click.option("--reason", required=True, type=click.Choice(REJECT_REASONS), help="Why.")
@click.option("--note", default=None, help="A note for the audit.")
@click.option("--expect-version", type=int, default=None, metavar="N", help=_VERSION_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_reject(state: State, candidate_id: int, reason: str, note: str | None,
                  expect_version: int | None, as_json: bool) -> None:
    """Reject a candidate (and its copies) with a reason.

    \b
    Example:
        dealwatch review reject 13 --reason aggregate
        dealwatch review reject 16 --reason other --note "a trade fair, not a deal"
    """
    from pipeline.review.decisions import decide

    with state.store() as store:
        outcome = decide(store, candidate_id, "reject", state.reviewer_name,
                         version=expect_version, reason=reason, note=note)
        _print_outcomes(store, [outcome], as_json)


@review.command("defer")
@click.argument("candidate_id", metavar="ID", type=int)
@click.option("--note", default=None, help="What to find out first.")
@click.option("--expect-version", type=int, default=None, metavar="N", help=_VERSION_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_defer(state: State, candidate_id: int, note: str | None, expect_version: int | None,
                 as_json: bool) -> None:
    """Put a candidate (and its copies) aside to decide later.

    \b
    Example:
        dealwatch review defer 17 --note "wait for the ministry's statement"
        dealwatch review list --status deferred
    """
    from pipeline.review.decisions import decide

    with state.store() as store:
        outcome = decide(store, candidate_id, "defer", state.reviewer_name,
                         version=expect_version, note=note)
        _print_outcomes(store, [outcome], as_json)


@review.command("edit")
@click.argument("candidate_id", metavar="ID", type=int)
@_set_option("A field and its corrected value (repeatable; an empty value clears it).")
@click.option("--note", default=None, help="A note for the audit.")
@click.option("--expect-version", type=int, default=None, metavar="N", help=_VERSION_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_edit(state: State, candidate_id: int, edits: dict[str, str], note: str | None,
                expect_version: int | None, as_json: bool) -> None:
    """Correct a candidate's fields without deciding it; the audit keeps the old values.

    \b
    Example:
        dealwatch review edit 12 --set country=UG --set "counterpart=Uganda Telecom"
        dealwatch review edit 12 --set deal_types=cloud,data_centre --set value=12500000
    """
    from pipeline.review.decisions import edit

    with state.store() as store:
        outcome = edit(store, candidate_id, state.reviewer_name, edits, version=expect_version,
                       note=note, known_vendors=state.config.vendor_ids())
        if as_json:
            _print_outcomes(store, [outcome], as_json)
        else:
            click.echo(f"edited #{candidate_id} ({', '.join(edits) or 'note'}); it stays "
                       f"{outcome.status}")


@review.command("undo")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_undo(state: State, as_json: bool) -> None:
    """Take back your last decision or edit (statuses, fields and the registry as they were).

    \b
    Example:
        dealwatch review --reviewer ann undo
    """
    from pipeline.review.decisions import undo

    with state.store() as store:
        outcome = undo(store, state.reviewer_name)
        _print_outcomes(store, [outcome], as_json)


@review.command("bulk-reject")
@click.argument("candidate_ids", metavar="ID...", type=int, nargs=-1, required=True)
@click.option("--reason", required=True, type=click.Choice(REJECT_REASONS), help="Why.")
@click.option("--note", default=None, help="A note for the audit.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_bulk_reject(state: State, candidate_ids: tuple[int, ...], reason: str,
                       note: str | None, as_json: bool) -> None:
    """Reject several candidates (each with its copies) for one reason; all or none.

    \b
    Example:
        dealwatch review bulk-reject 21 22 23 --reason domestic
        dealwatch review list --country CN --json | jq '.[].id' \\
            | xargs dealwatch review bulk-reject --reason domestic
    """
    from pipeline.review.decisions import bulk_reject

    with state.store() as store:
        outcomes = bulk_reject(store, list(candidate_ids), state.reviewer_name, reason, note)
        _print_outcomes(store, outcomes, as_json)


# --- the registry ---------------------------------------------------------------------------


def _render_deal(record: dict[str, Any], out: Callable[[str], None], merged_into: str | None,
                 candidates: dict[str, list[int]]) -> None:
    counterpart = (record["counterpart"] or "-") + (
        f" ({record['counterpart_type']})" if record["counterpart_type"] else "")
    amount = money(record["value"], record["currency"])
    out(f"{record['deal_id']}  version {record['version']}"
        + (f"  merged into {merged_into}" if merged_into else ""))
    out(f"  vendor: {', '.join(record['vendors']) or record['vendor'] or '-'}  country: "
        f"{record['country'] or '-'}" + (f" ({record['country_name']})" if record["country_name"]
                                         else "") + f"  counterpart: {counterpart}")
    out(f"  type: {', '.join(record['deal_types']) or '-'}  stage: {record['stage'] or '-'}"
        + (f"  value: {amount}" if amount else "") + (f"  year: {record['year']}" if record["year"]
                                                   else ""))
    out(f"  reported {record['first_reported'] or '?'} – {record['last_reported'] or '?'}; "
        f"confirmed by {record['confirmed_by']} at {record['confirmed_at']}")
    if record["notes"]:
        out(f"  notes: {record['notes']}")
    if record["stage_history"]:
        out("  stages: " + " → ".join(f"{h['stage']} ({h['reported'] or 'undated'})"
                                      for h in record["stage_history"]))
    out(f"  sources ({len(record['sources'])}; split --source takes the #):")
    for s in record["sources"]:
        marks = " ".join(f"#{c}" for c in candidates.get(s["url"], []))
        out(f"    {marks}  {s['published'] or 'undated'}  {s['site'] or ''}  {s['url']}")
        out(f"      “{s['sentence']}”")


@main.group()
@_reviewer_option
@pass_state
def deals(state: State, reviewer: str | None) -> None:
    """The registry: confirmed deals with their sources; merge and split them.

    \b
    Example:
        dealwatch deals list
        dealwatch deals show dw-000003
        dealwatch deals merge dw-000003 dw-000007     # one real-world deal recorded twice
        dealwatch deals split dw-000003 --source 41 --source 42
    """
    state.reviewer = reviewer


@deals.command("list")
@click.option("--json", "as_json", is_flag=True, help="The registry records (as `export`).")
@pass_state
def deals_list(state: State, as_json: bool) -> None:
    """Every deal in the registry (merged ones left out), oldest first.

    \b
    Example:
        dealwatch deals list
        dealwatch deals list --json | jq '.[] | select(.stage == "signed") | .deal_id'
    """
    from pipeline.review.export import registry_records

    with state.store() as store:
        records = registry_records(store)
    if as_json:
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    if not records:
        click.echo("the registry is empty: `dealwatch review confirm ID` files a deal")
    for r in records:
        click.echo(f"{r['deal_id']}  {','.join(r['vendors']) or r['vendor'] or '-':<12} "
                   f"{r['country'] or '--'}  {(r['counterpart'] or '-')[:32]:<32} "
                   f"{','.join(r['deal_types']) or '-':<18} {r['stage'] or '-':<18} "
                   f"{len(r['sources'])} source(s)  {r['first_reported'] or '?'} – "
                   f"{r['last_reported'] or '?'}")


@deals.command("show")
@click.argument("deal_id", metavar="ID", type=DEAL)
@click.option("--json", "as_json", is_flag=True, help="The registry record.")
@pass_state
def deals_show(state: State, deal_id: int, as_json: bool) -> None:
    """One deal: its fields, stage history and every source with its evidence.

    \b
    Example:
        dealwatch deals show dw-000003
        dealwatch deals show 3 --json
    """
    from pipeline.review.export import deal_record

    with state.store() as store:
        deal = store.deal(deal_id)
        if deal is None:
            fail(f"no deal {deal_id} in the registry")
        record = deal_record(store, deal)
        merged_into = _deal_label(store, deal.get("merged_into"))
        candidates: dict[str, list[int]] = {}
        for source in store.deal_sources(deal_id):
            candidates.setdefault(source["url"], []).append(source["candidate_id"])
    if as_json:
        click.echo(json.dumps({**record, **({"merged_into": merged_into} if merged_into else {})},
                              ensure_ascii=False, indent=2))
    else:
        _render_deal(record, click.echo, merged_into, candidates)


@deals.command("merge")
@click.argument("keep", type=DEAL)
@click.argument("absorb", type=DEAL)
@pass_state
def deals_merge(state: State, keep: int, absorb: int) -> None:
    """One real-world deal recorded twice: move ABSORB's sources and stages into KEEP.

    ABSORB stays in the database as merged (exports leave it out; a push tells the endpoint).

    \b
    Example:
        dealwatch deals merge dw-000003 dw-000007
    """
    from pipeline.review.registry import merge_deals

    with state.store() as store:
        merge_deals(store, keep, absorb)
        logger.info("%s merged deal %d into %d", state.reviewer_name, absorb, keep)
        click.echo(f"merged {_deal_label(store, absorb)} into {_deal_label(store, keep)} "
                   f"({len(store.deal_sources(keep))} sources now)")


@deals.command("split")
@click.argument("deal_id", metavar="ID", type=DEAL)
@click.option("--source", "sources", type=int, multiple=True, required=True, metavar="CANDIDATE_ID",
              help="A source (candidate id, as `deals show` lists) to move into the new deal "
                   "(repeatable).")
@pass_state
def deals_split(state: State, deal_id: int, sources: tuple[int, ...]) -> None:
    """Two real-world deals recorded as one: move some sources into a new deal.

    \b
    Example:
        dealwatch deals split dw-000003 --source 41 --source 42
    """
    from pipeline.review.registry import split_deal

    with state.store() as store:
        new_id = split_deal(store, deal_id, list(sources), state.reviewer_name)
        click.echo(f"moved {len(store.deal_sources(new_id))} source(s) of "
                   f"{_deal_label(store, deal_id)} into the new deal {_deal_label(store, new_id)}")


# --- export and push ------------------------------------------------------------------------


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from pipeline.review.export import ExportError, parse_since

    if value is None:
        return None
    try:
        return parse_since(value)
    except ExportError as exc:
        raise click.BadParameter(str(exc).removeprefix("since: "), ctx, param) from None


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader (or a crash) never sees half an export: write beside it, then rename."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@main.command()
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default=None,
              help="csv (one row per deal), json (a list) or jsonl (a record per line). "
                   "Default: csv.")
@click.option("--out", default=None, metavar="FILE", help="Write to FILE ('-' or absent: stdout).")
@click.option("--since", default=None, metavar="DATE", callback=_since,
              help="Only deals changed on or after DATE (a new source, stage or field).")
@click.option("--push", "push_url", default=None, metavar="URL",
              help="POST new and changed deals to this registry endpoint instead (env "
                   "DEALWATCH_PUSH_TOKEN: sent as a bearer token).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Push: seconds to wait for each answer.")
@click.option("--retries", type=click.IntRange(0, 20), default=3, show_default=True,
              help="Push: retries of a deal after a 5xx, 429 or lost connection.")
@click.option("--backoff", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Push: seconds before the first retry, doubling after each.")
@pass_state
def export(state: State, fmt: str | None, out: str | None, since: str | None,
           push_url: str | None, timeout: float, retries: int, backoff: float) -> None:
    """Export the registry (one record per deal, with its sources), or push it to an endpoint.

    The same registry gives the same bytes; each export is logged in the `exports` table. A push
    sends each deal version the endpoint has not acknowledged, with an Idempotency-Key
    (`<deal_id>-v<version>`), and exits 1 when a deal could not be sent (run it again: it sends
    only what is missing).

    \b
    Example:
        dealwatch export --format csv --out registry.csv
        dealwatch export --format jsonl --since 2026-01-01 > changed.jsonl
        dealwatch export --push https://registry.example.org/api/deals
    """
    import os

    from pipeline.review.export import build_export, log_export, push_deals

    if push_url:
        if fmt or out or since:
            raise click.UsageError("--push sends every new or changed deal: it takes no "
                                   "--format, --out or --since")
        with state.store() as store:
            report = push_deals(store, push_url, timeout=timeout, retries=retries, backoff=backoff,
                                token=os.environ.get("DEALWATCH_PUSH_TOKEN") or None)
            store.record_export("push", push_url, None, len(report.sent), report.payload_sha256)
        for key, error in report.failed:
            click.echo(f"  not sent: {key}: {error}", err=True)
        if not report.ok:
            fail(f"push to {push_url}: {report.summary()}; run it again to send the rest")
        click.echo(f"push to {push_url}: {report.summary()}")
        return
    with state.store() as store:
        result = build_export(store, fmt or "csv", since)
        if out in (None, "-"):
            sys.stdout.flush()
            sys.stdout.buffer.write(result.data)  # bytes as built: no newline translation
            sys.stdout.buffer.flush()
            destination = "stdout"
        else:
            path = Path(out)
            try:
                _write_atomically(path, result.data)
            except OSError as exc:
                fail(f"{out}: cannot write: {exc.strerror or exc}")
            destination = str(path.resolve())
        log_export(store, result, destination)
    click.echo(f"exported {result.deals} deal(s) as {result.format} to {destination}", err=True)


# --- reviewers and the web UI ---------------------------------------------------------------


@main.group()
def user() -> None:
    """Reviewer accounts for the web UI.

    \b
    Example:
        dealwatch user add ann                                    # asks for the password twice
        printf '%s\\n' "$ANN_PASSWORD" | dealwatch user add ann --password-stdin
    """


@user.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of stdin (for scripts).")
@pass_state
def user_add(state: State, name: str, password_stdin: bool) -> None:
    """Create a reviewer who can sign in to the web UI.

    \b
    Example:
        dealwatch user add ann
    """
    from pipeline.review.accounts import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with state.store() as store:
        add_user(store, name, password)
    click.echo(f"created reviewer {name}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on.")
@click.option("--public", is_flag=True,
              help="Allow an address other than loopback (put TLS in front of it).")
@pass_state
def serve(state: State, host: str, port: int, public: bool) -> None:
    """The review web UI (sign in with an account from `dealwatch user add`).

    \b
    Example:
        dealwatch serve                 # http://127.0.0.1:8765/
        dealwatch serve --host 0.0.0.0 --port 8080 --public
    """
    try:
        from pipeline.review.web import run_server
    except ModuleNotFoundError as exc:
        fail(f"the web UI cannot start: {exc}")
    run_server(state.config, state.db_path, host=host, port=port, allow_public=public)


# --- analyze and eval -----------------------------------------------------------------------


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
    from pipeline.ingest.extract import html_document, looks_like_html
    from pipeline.language import normalise_language

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


def _analysis_json(doc_id: Any, analysis: Any, signals: bool) -> dict[str, Any]:
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


@main.command()
@click.argument("source", default="-", metavar="FILE|-")
@click.option("--jsonl", is_flag=True,
              help='Input has one JSON object per line: {"id": ..., "text": ...} (or "html"), '
                   'with an optional "title": the headline, read as context.')
@click.option("--signals", is_flag=True, help="Also show why each candidate scored as it did.")
@click.option("--ranker", "ranker_path", default=None, metavar="PATH",
              help="Score with this ranker model (dealwatch train); default: process.ranker, "
                   "else the shipped one.")
@click.option("--model", "use_model", type=MODEL_CHOICES, default=None,
              help="Use the statistical spaCy model: auto, never, required.")
@_lang_option("The language of the input (ISO 639-1: en, es, pt, fr); a --jsonl record's own "
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
    from pipeline.analysis.rank import SHIPPED, load
    from pipeline.jsonl import json_lines, parse_json_line

    raw = _read_input(source)
    # analyze never touches the database: no model trained for one is looked up
    path = ranker_path or state.config.settings.process.ranker
    analyzer = state.analyzer(use_model, ranker=load(path) if path else SHIPPED)
    if not jsonl:
        analysis = next(analyzer.analyze_many([_document_passage({"text": raw}, language)]))
        click.echo(json.dumps(_analysis_json(source, analysis, signals), ensure_ascii=False))
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
        click.echo(json.dumps(_analysis_json(doc_id, analysis, signals), ensure_ascii=False))
    if bad:
        fail(f"{source}: {bad} line(s) could not be read (see above)")


@main.command()
@click.option("--gold", "gold_files", multiple=True, metavar="FILE.jsonl",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Labelled passages in the eval format (repeatable).")
@click.option("--from-reviews", is_flag=True,
              help="Also learn from the reviewers' decisions in the database (--db).")
@click.option("--no-base", is_flag=True,
              help="Leave out the project's own labelled passages (shipped with dealwatch).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="PATH", help="Where to write the model (JSON).")
@click.option("--model", "use_model", type=MODEL_CHOICES, default=None,
              help="Use the statistical spaCy model for labelled passages: auto, never, required.")
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
    from pipeline.analysis.evaluate import load_gold
    from pipeline.analysis.rank import examples_from_gold, examples_from_reviews, in_sample, shipped_gold
    from pipeline.analysis.rank import train as train_ranker

    files = [] if no_base else [(f"gold:{name}", path) for name, path in shipped_gold()]
    for path in gold_files:
        if path.name == "deal_passages_frozen.jsonl":
            fail(f"{path}: the frozen test set is never trained on")
        files.append((f"gold:{path.name}", path))
    if not files and not from_reviews:
        fail("nothing to train on: give --gold FILE, --from-reviews, or leave out --no-base")
    records = [(label, load_gold(path)) for label, path in files]  # every file checked first
    examples = []
    if records:
        analyzer = state.analyzer(use_model, ranker=None)  # features need the rule score only
        for label, recs in records:
            examples += examples_from_gold(recs, analyzer, label)
    if from_reviews:
        with state.store() as store:
            examples += examples_from_reviews(store)
    ranker = train_ranker(examples)
    ranker.save(out)
    summary = ranker.summary
    for source, counts in summary["sources"].items():
        click.echo(f"trained on {source}: {counts['examples']} candidates, "
                   f"{counts['positive']} confirmed")
    fit = in_sample(ranker, examples, state.config.rules.scoring.threshold)
    click.echo(f"in sample: accuracy {fit['accuracy']:.2f}, average precision "
               f"{fit['average_precision'] or 0:.2f} ({len(ranker.feature_names)} features)")
    if from_reviews:
        with state.store() as store:
            store.record_ranker(str(out.resolve()), summary)
        click.echo(f"wrote {out}: the default ranker of this database from now on "
                   "(dealwatch process --rescore ranks the stored candidates with it)")
    else:
        click.echo(f"wrote {out}")


@main.command("eval")
@click.argument("gold", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Metrics as JSON.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Score above which a candidate counts (default: rules.toml's threshold).")
@click.option("--model", "use_model", type=MODEL_CHOICES, default=None,
              help="Use the statistical spaCy model: auto, never, required.")
@pass_state
def eval_command(state: State, gold: Path, as_json: bool, threshold: float | None,
                 use_model: str | None) -> None:
    """Score the detector on labelled passages (JSONL with is_deal yes/no/aggregate).

    \b
    Example:
        dealwatch eval labelled_passages.jsonl
        dealwatch eval gold.jsonl --json --model never
    """
    from pipeline.analysis.evaluate import evaluate, format_report, load_gold

    records = load_gold(gold)
    metrics = evaluate(records, state.analyzer(use_model), threshold=threshold)
    if as_json:
        click.echo(json.dumps(metrics, indent=2, ensure_ascii=False))
    else:
        click.echo(format_report(metrics))


# --- the demo -------------------------------------------------------------------------------


@main.command()
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port for the demo site on 127.0.0.1 (default 8711, or a free one).")
@click.option("--limit", type=click.IntRange(min=0), default=15, show_default=True,
              help="How many queue entries to print (0 for all).")
@click.option("--serve", "keep_serving", is_flag=True,
              help="Keep serving the demo site after the run (Ctrl-C to stop).")
@click.option("--model", "use_model", type=MODEL_CHOICES, default=None,
              help="Use the statistical spaCy model: auto, never, required.")
@pass_state
def demo(state: State, port: int | None, limit: int, keep_serving: bool,
         use_model: str | None) -> None:
    """Serve the bundled demo news site, crawl it, process it, print the review queue.

    Everything goes into the database (default data/dealwatch.db); running it again adds
    nothing that is already there.

    \b
    Example:
        dealwatch demo
        dealwatch --db /tmp/demo.db demo --limit 0
    """
    from pipeline.demo import DEMO_PORT, demo_config_dir, serve_demo_site

    started = time.monotonic()
    with serve_demo_site(DEMO_PORT if port is None else port) as site:
        click.echo(f"demo site: {site.base_url}/ (fictional stories written for dealwatch)",
                   err=True)
        with demo_config_dir(site.base_url, state.config.directory) as tmp_config:
            demo_state = State(str(state.db_path), str(tmp_config), state.verbose)
            with demo_state.recorded_run("demo") as (store, record):
                crawl_report = _crawl(demo_state, store, None, record.id)
                record.add_crawl(crawl_report)
                _print_crawl(crawl_report)
                process_report = _process(demo_state, store, use_model)
                record.add_process(process_report)
                _print_process(process_report)
                everything = store.queue(QueueFilter(status="pending", limit=None))
                rows, total = everything[:limit] if limit else everything, len(everything)
                has_reviewers = bool(store.users())
        click.echo(f"done in {time.monotonic() - started:.1f}s\n", err=True)
        click.echo(f"Review queue ({len(rows)} of {total} pending, best first; a syndicated "
                   "story is one entry):\n")
        render_queue(rows, click.echo)
        db = state.db_path
        prog = _prog()
        click.echo(f"\nNext: `{prog} --db {db} queue --limit 0` lists every pending candidate;"
                   f" `{prog} --db {db} queue --json` gives them to scripts.")
        from pipeline.review.web import review_ui_hint

        click.echo(review_ui_hint(db, has_reviewers, prog))
        if keep_serving:
            click.echo(f"serving {site.base_url}/ until Ctrl-C", err=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    if not crawl_report.ok:
        fail("the demo crawl finished with errors (see above)")


if __name__ == "__main__":
    main()
