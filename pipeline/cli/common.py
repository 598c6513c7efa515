"""What every command shares: the global State, errors and exit codes, common options, output."""

from __future__ import annotations

import getpass
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from models.errors import DealwatchError
from models.registry import parse_deal_number, parse_report_number
from pipeline.config import Config, db_location, load_config
from pipeline.ingest.crawl import OnProgress
from pipeline.jobs.exits import exit_status
from pipeline.jobs.runs import (
    ProcessLines,
    ProgressLines,
    all_sources,
    describe_budget,
    describe_processing,
    describe_progress,
    source_label,
    stop_on_sigterm,
)
from pipeline.language import normalise_language
from pipeline.review import filters
from pipeline.storage import Store, StoreError, open_database
from pipeline.storage.database import DatabaseLocation, shown_location
from pipeline.urls import is_database_url

if TYPE_CHECKING:
    from rich.progress import TaskID

    from models.records import OnProcessProgress, ProcessProgress
    from pipeline.analysis.analyze import Analyzer
    from pipeline.analysis.rank import Ranker
    from scrapers.progress import SourceProgress

logger = logging.getLogger(__name__)

MODEL_CHOICES = click.Choice(["auto", "never", "required"])
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class UserError(DealwatchError):
    """A problem the user can fix; shown as one line, exit code 1."""


def fail(message: str) -> NoReturn:
    raise UserError(message)


class DealwatchGroup(click.Group):
    """The top-level group: the one place errors become messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        stop_on_sigterm()
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except (KeyboardInterrupt, Exception) as exc:
            status = exit_status(exc)  # shared with `python -m pipeline.jobs.nightly`
            if status is None:
                raise
            click.echo(status.message, err=True)
            sys.exit(status.code)


class State:
    """What every command needs, built lazily from the global options."""

    def __init__(self, db: str | None, config_dir: str | None, verbose: int):
        self.db_option = db
        self.config_option = config_dir
        self.verbose = verbose
        self.reviewer: str | None = None  # --reviewer of the review and deals groups
        self._config: Config | None = None
        # The database once checked, by may_create: checked once per command (on a server, a
        # connection of its own), however often the command opens it.
        self._checked: dict[bool, DatabaseLocation] = {}

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
    def db_path(self) -> DatabaseLocation:
        """The database of this command (a SQLite file's Path, or a postgresql:// URL, to be
        shown only through shown_location); UserError when it cannot be one, or when a command
        that does not create the database (CREATES_DATABASE) names one that does not exist."""
        return self.database()

    @property
    def db_shown(self) -> str:
        """The database of this command as it may be shown (a URL without its password), as
        given: not checked again (db_path checks it, connecting to a server)."""
        return shown_location(db_location(self.db_option, self.config.settings))

    def database(self, may_create: bool | None = None) -> DatabaseLocation:
        """The database of this command, as db_path; may_create: whether this run of it may make
        the file or the tables (None: as CREATES_DATABASE says of the command; False for a run
        that only reads, such as a dry run of a command that writes)."""
        if may_create is None:
            may_create = _command_name() in CREATES_DATABASE
        # one that may not be created passed the stricter check
        checked = self._checked.get(may_create) or self._checked.get(False)
        if checked is not None:
            return checked
        self._checked[may_create] = self._checked_database(may_create)
        return self._checked[may_create]

    def _checked_database(self, may_create: bool) -> DatabaseLocation:
        location = db_location(self.db_option, self.config.settings)
        origin = self._db_origin()
        shown = shown_location(location)
        dealwatch = prog() + (f" --db {shlex.quote(shown)}" if origin == "--db" else "")
        if is_database_url(location):
            problem = server_database_problem(location, may_create, dealwatch)
            if problem:
                fail(f"{problem} (from {origin})")
            return location
        path = Path(location)
        problem = database_problem(path, may_create, dealwatch)
        if problem:
            fail(f"{problem} (from {origin})")
        return path

    def _db_origin(self) -> str:
        """Where the database path came from: --db, DEALWATCH_DB (the option's envvar) or
        settings.toml, as db_location picked it."""
        ctx = click.get_current_context(silent=True)
        source = ctx.find_root().get_parameter_source("db") if ctx is not None else None
        if source is click.core.ParameterSource.ENVIRONMENT:
            return "DEALWATCH_DB"
        if self.db_option:
            return "--db"
        return f"database.path in {self.config.files['settings.toml']}"

    @contextmanager
    def store(self, may_create: bool | None = None) -> Iterator[Store]:
        """The store of this command's database (may_create: as `database`)."""
        store = Store(self.database(may_create), self.config.settings.database.busy_timeout_ms)
        try:
            yield store
        finally:
            store.close()

    def analyzer(self, use_model: str | None = None, ranker: Ranker | str | None = "shipped"
                 ) -> Analyzer:
        """The analysis chain; ranker: a loaded Ranker, "shipped", or None (the rule score)."""
        from pipeline.jobs.analyzer import build_analyzer  # loads spaCy

        return build_analyzer(self.config, use_model, ranker)

    def default_ranker(self, store: Store) -> Ranker | None:
        """The model that scores candidates for this database (pipeline.jobs.analyzer)."""
        from pipeline.jobs.analyzer import default_ranker  # loads spaCy

        return default_ranker(self.config, store)


pass_state = click.make_pass_decorator(State)

# The commands that may make the database: they write, and a first run starts from nothing. Any
# other command that opens it refuses a path that does not exist, so that a mistyped --db is an
# error rather than a new, empty database ("the queue is empty"); so does a run of one of these
# that only reads (`deals import --dry-run` opens its store with may_create=False).
CREATES_DATABASE = frozenset({"init", "migrate", "crawl", "process", "run", "schedule", "demo",
                              "user add", "deals import"})


def _command_name() -> str | None:
    """The command being run, below `dealwatch` ("review list"); None outside a command."""
    ctx = click.get_current_context(silent=True)
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names)) or None


def database_problem(path: Path, may_create: bool, dealwatch: str = "dealwatch") -> str | None:
    """Why `path` cannot be this command's database file, in one line; None when it can.
    dealwatch: how to call dealwatch on this database, for the commands a message suggests."""
    if path.is_dir():
        return f"{path} is a directory, not a database file (such as {path / 'dealwatch.db'})"
    if path.exists():
        if not os.access(path, os.R_OK):
            return f"{path}: cannot read the database: permission denied"
        return None
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        return f"{path}: cannot open database: {parent} is a file, not a directory"
    if may_create:
        return None
    return (f"{path}: no such database; `{dealwatch} init` creates an empty one, "
            f"`{dealwatch} run` creates and fills it")


def server_database_problem(url: str, may_create: bool, dealwatch: str = "dealwatch"
                            ) -> str | None:
    """Why the PostgreSQL database at `url` cannot be this command's, in one line (the URL
    without its password); None when it can. The server must answer; a command that does not
    create the database refuses one without dealwatch's tables rather than filling it."""
    try:
        database = open_database(url, migrate=False)
    except StoreError as exc:
        return str(exc)
    try:
        if may_create or database.schema_version() > 0:
            return None
    finally:
        database.close()
    return f"{shown_location(url)} has no dealwatch tables; `{dealwatch} init` creates them"


def configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# --- options --------------------------------------------------------------------------------


def model_option(help_text: str = "Use the statistical spaCy model: auto, never, required."
                 ) -> Decorator:
    return click.option("--model", "use_model", type=MODEL_CHOICES, default=None, help=help_text)


def _language_code(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An ISO 639-1 code from what a user typed ("es", "pt-BR", "fra")."""
    if value is None:
        return None
    code = normalise_language(value)
    if code is None:
        raise click.BadParameter(f"{value!r} is no language code (ISO 639-1, e.g. es, pt, fr)")
    return code


def lang_option(help_text: str) -> Decorator:
    return click.option("--lang", "language", default=None, metavar="CODE",
                        callback=_language_code, help=help_text)


def _reviewer(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter("an empty name", ctx, param)
    return value.strip() if value else None


def reviewer_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--reviewer", metavar="NAME", envvar="DEALWATCH_REVIEWER",
                        callback=_reviewer,
                        help="Who decides, for the audit (env DEALWATCH_REVIEWER; default: "
                             "your OS user name).")(f)


def _checked(check: Callable[[str], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback from a check of pipeline.review.filters: no value passes, a value it
    refuses is a usage error with its message (which names the valid ones)."""
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return None
        try:
            return check(value)
        except filters.FilterError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return callback


def _vendor_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A watchlist vendor's id from its id in any case, its name or an alias ("Huawei")."""
    state = ctx.find_object(State)
    if state is None:  # a command called without `dealwatch` above it
        return value.strip().lower() if value is not None else None
    return _checked(lambda v: filters.vendor_id(v, state.config.watchlist))(ctx, param, value)


def vendor_option(help_text: str = "Only this watchlist vendor.") -> Decorator:
    return click.option("--vendor", default=None, metavar="ID", callback=_vendor_id,
                        help=help_text)


def country_option(help_text: str = "Only this country (ISO alpha-2).") -> Decorator:
    return click.option("--country", default=None, metavar="CC",
                        callback=_checked(filters.country_code), help=help_text)


def _search_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter("an empty search", ctx, param)
    return value.strip() if value else None


def search_option(help_text: str = "Only candidates whose article (title or text) has all these "
                  "words, or whose evidence has TEXT as typed.") -> Decorator:
    return click.option("--search", default=None, metavar="TEXT", callback=_search_text,
                        help=help_text)


def year_option(help_text: str) -> Decorator:
    return click.option("--year", default=None, metavar="YYYY", callback=_checked(filters.year),
                        help=help_text)


def sort_options(keys: Iterable[str], help_text: str) -> Decorator:
    """--sort KEY (one of keys; an unknown one lists them) and --desc/--asc (default: the key's
    own order)."""
    def add(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--desc/--asc", "descending", default=None,
                         help="Descending (Z to A, newest, most first) or ascending "
                              "(default: the key's own order).")(f)
        return click.option("--sort", type=click.Choice(list(keys)), default=None,
                            metavar="KEY", help=f"{help_text} One of: {', '.join(keys)}.")(f)
    return add


class RecordRef(click.ParamType):
    """A registry record by its name or its number: a deal (dw-000003 or 3), a report
    (rp-000001 or 1); its row id."""

    def __init__(self, name: str, parse: Callable[[str], int | None], example: str):
        self.name, self.parse, self.example = name, parse, example

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        number = self.parse(str(value))
        if number is None:
            self.fail(f"{self.example}, not {value!r}", param, ctx)
        return number


DEAL = RecordRef("DEAL", parse_deal_number, "a deal id such as dw-000003 or 3")
REPORT = RecordRef("REPORT", parse_report_number, "a report id such as rp-000001 or 1")


# --- output ---------------------------------------------------------------------------------


def echo_json(data: Any, indent: int | None = 2) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=indent))


def table_lines(header: Sequence[str], rows: Iterable[Sequence[str]],
                right: Collection[int] = ()) -> list[str]:
    """Rows as text columns under a header, each as wide as its widest cell; the columns in
    `right` (numbers) aligned right."""
    cells = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in cells]


def echo_err(lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=True)


def on_terminal() -> bool:
    """Someone is watching: stdout and stderr (where progress goes) are both a terminal. In cron,
    a pipe or a log, progress is plain lines or nothing."""
    return sys.stdout.isatty() and sys.stderr.isatty()


# Under cron, a long processing run says how far it has got this often (seconds).
PLAIN_PROGRESS_EVERY = 60.0


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal; in cron or a pipe, a line every PLAIN_PROGRESS_EVERY seconds
    while it goes on (a short run says nothing)."""
    if total == 0:
        yield None
        return
    if not on_terminal():
        done, started, said = 0, time.monotonic(), time.monotonic()

        def advance(n: int) -> None:
            nonlocal done, said
            done += n
            if time.monotonic() - said >= PLAIN_PROGRESS_EVERY:
                said = time.monotonic()
                click.echo(f"{label}: {done:,} of {total:,} after "
                           f"{said - started:.0f}s", err=True)

        yield advance
        return
    # rich only here: `dealwatch --help` and commands in cron need not load it
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def crawl_display() -> Iterator[OnProgress]:
    """Each source's crawl progress: live on a terminal (requests, articles, errors, the run's
    budget left), else a plain line per source when it finishes (and every minute while a long
    one goes on)."""
    if not on_terminal():
        yield ProgressLines(lambda line: click.echo(line, err=True), PLAIN_PROGRESS_EVERY)
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description}"),
                  TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                  TextColumn("[dim]{task.fields[budget]}"), console=Console(stderr=True),
                  transient=True) as bar:
        starting = bar.add_task("crawl: starting the crawler", total=None, counts="", budget="")
        tasks: dict[str, TaskID] = {}

        def show(progress: SourceProgress) -> None:
            if not tasks:
                bar.remove_task(starting)
            if progress.source not in tasks:
                tasks[progress.source] = bar.add_task(f"crawl {progress.source}", total=None,
                                                      counts="", budget="")
            budget = describe_budget(progress)
            bar.update(tasks[progress.source], counts=describe_progress(progress),
                       budget=f"budget left: {budget}" if budget else "")
            if progress.finished:
                bar.update(tasks[progress.source], total=1, completed=1)

        yield show


@contextmanager
def processing_display() -> Iterator[OnProcessProgress]:
    """Each source's processing progress: live on a terminal (a bar of its pages done, its
    articles, candidates, pages skipped and failed), under a row for the whole run; else a plain
    line per source when its pages are done (and one for the run every minute while it goes on)."""
    if not on_terminal():
        yield ProcessLines(lambda line: click.echo(line, err=True), PLAIN_PROGRESS_EVERY)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("pages"), TimeRemainingColumn(), TextColumn("{task.fields[counts]}"),
                  # the counts change once a batch: twice a second is enough (rich's default,
                  # ten, drew for about 1% of processing's time: docs/benchmarks.md)
                  refresh_per_second=2, console=Console(stderr=True), transient=True) as bar:
        whole = bar.add_task("processing", total=None, counts="")
        rows: dict[str | None, TaskID] = {}
        latest: dict[str | None, ProcessProgress] = {}

        def show(progress: ProcessProgress) -> None:
            latest[progress.source] = progress
            if progress.source not in rows:
                rows[progress.source] = bar.add_task(f"process {source_label(progress.source)}",
                                                     total=None, counts="")
            for task, shown in ((rows[progress.source], progress),
                                (whole, all_sources(list(latest.values())))):
                bar.update(task, total=shown.pages, completed=shown.done,
                           counts=describe_processing(shown))

        yield show


def prog() -> str:
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


def write_atomically(path: Path, data: bytes) -> None:
    """A reader (or a crash) never sees half a file: write beside it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_output(out: str | None, data: bytes) -> str:
    """Bytes to the file `out`, atomically (one line naming it when it cannot be written), or to
    stdout as built when `out` is None or "-"; where they went, for the closing message."""
    if out in (None, "-"):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)  # bytes as built: no newline translation
        sys.stdout.buffer.flush()
        return "stdout"
    path = Path(out)
    try:
        write_atomically(path, data)
    except OSError as exc:
        fail(f"{out}: cannot write: {exc.strerror or exc}")
    return str(path.resolve())


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


def set_option(help_text: str) -> Decorator:
    """--set FIELD=VALUE (repeatable), as a dict: the corrections of `review edit` and `deals edit`."""
    return click.option("--set", "edits", multiple=True, metavar="FIELD=VALUE",
                        callback=_parse_sets, help=help_text)
