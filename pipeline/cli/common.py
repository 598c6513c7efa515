"""What every command shares: the global State, errors and exit codes, common options, output."""

from __future__ import annotations

import getpass
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from models.errors import DealwatchError
from pipeline.config import Config, load_config, resolve_db_path
from pipeline.jobs.exits import exit_status
from pipeline.jobs.runs import stop_on_sigterm
from pipeline.language import normalise_language
from pipeline.storage import Store

if TYPE_CHECKING:
    from pipeline.analysis.analyze import Analyzer
    from pipeline.analysis.rank import Ranker

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


# --- output ---------------------------------------------------------------------------------


def echo_json(data: Any, indent: int | None = 2) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=indent))


def echo_err(lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=True)


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal; nothing in cron or a pipe."""
    if not sys.stderr.isatty() or total == 0:
        yield None
        return
    # rich only here: `dealwatch --help` and commands in cron need not load it
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


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
