"""Setting up: init, migrate, check-config, the watchlist, reviewer accounts."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from models.config import WatchlistEntry
from pipeline.cli.common import (
    State,
    echo_json,
    fail,
    pass_state,
    table_lines,
    write_atomically,
)
from pipeline.config import SHIPPED_CONFIG_DIR, read_watchlist
from pipeline.review.accounts import (
    add_user,
    change_password,
    disable_user,
    enable_user,
    reviewer,
)
from pipeline.review.reports import refile_hint
from pipeline.storage import Store


@click.command()
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
        store.runs.sync_sources(state.config.sources)
        click.echo(f"database {store.location} ready (schema version {store.schema_version()})")


@click.command()
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
        click.echo(f"{store.location}: schema version {store.schema_version()}"
                   + ("" if applied else " (up to date)"))
        refile = refile_hint(store)
        if refile:
            click.echo(refile)
    finally:
        store.close()


@click.command("check-config")
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


@click.group()
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
    write_atomically(path, after.encode("utf-8"))
    click.echo(f"added {entry.id} to {path}; `dealwatch process --reanalyse` applies it to "
               "stored articles")


# --- reviewer accounts ----------------------------------------------------------------------


@click.group()
def user() -> None:
    """Reviewer accounts for the web UI: add, list, disable, enable, new password.

    Passwords are kept as scrypt hashes in the accounts file beside the database
    (data/dealwatch.db.accounts), never in the database itself.

    \b
    Example:
        dealwatch user add ann                                    # asks for the password twice
        printf '%s\\n' "$ANN_PASSWORD" | dealwatch user add ann --password-stdin
        dealwatch user list
        dealwatch user disable ann                                # and ends her sessions
    """


def _read_password(password_stdin: bool, prompt: str = "Password") -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


def _sessions(n: int) -> str:
    return "no session was open" if n == 0 else f"ended {n} session{'s' if n != 1 else ''}"


PASSWORD_STDIN = click.option("--password-stdin", is_flag=True,
                              help="Read the password from the first line of stdin (for scripts).")


@user.command("add")
@click.argument("name")
@PASSWORD_STDIN
@pass_state
def user_add(state: State, name: str, password_stdin: bool) -> None:
    """Create a reviewer who can sign in to the web UI.

    \b
    Example:
        dealwatch user add ann
    """
    password = _read_password(password_stdin)
    with state.store() as store:
        add_user(store, name, password)
    click.echo(f"created reviewer {name}")


@user.command("list")
@click.option("--json", "as_json", is_flag=True,
              help="A JSON list: id, name, created_at, disabled, last_login_at per reviewer.")
@pass_state
def user_list(state: State, as_json: bool) -> None:
    """List the reviewers: name, when created, active or disabled, last login (UTC).

    \b
    Example:
        dealwatch user list
        dealwatch user list --json | jq -r '.[] | select(.disabled | not) | .name'
    """
    with state.store() as store:
        reviewers = store.accounts.users()
    if as_json:
        echo_json([r.to_dict() for r in reviewers])
        return
    if not reviewers:
        click.echo("no reviewers yet: `dealwatch user add NAME` creates one")
        return
    for line in table_lines(("NAME", "CREATED", "STATUS", "LAST LOGIN"), [
            (r.name, r.created_at, "disabled" if r.disabled else "active",
             r.last_login_at or "never") for r in reviewers]):
        click.echo(line)


@user.command("disable")
@click.argument("name")
@pass_state
def user_disable(state: State, name: str) -> None:
    """Stop a reviewer from logging in, and end their open sessions at once.

    Their decisions stay in the audit under their name; `user enable` lets them back in.

    \b
    Example:
        dealwatch user disable ann
    """
    with state.store() as store:
        was = reviewer(store, name)
        ended = disable_user(store, name)
    click.echo(f"disabled reviewer {name}" + (" (already disabled)" if was.disabled else "")
               + f"; {_sessions(ended)}")


@user.command("enable")
@click.argument("name")
@pass_state
def user_enable(state: State, name: str) -> None:
    """Let a disabled reviewer log in again, with the password they had.

    \b
    Example:
        dealwatch user enable ann
    """
    with state.store() as store:
        was = reviewer(store, name)
        enable_user(store, name)
    click.echo(f"enabled reviewer {name}" + ("" if was.disabled else " (already active)"))


@user.command("passwd")
@click.argument("name")
@PASSWORD_STDIN
@pass_state
def user_passwd(state: State, name: str, password_stdin: bool) -> None:
    """Give a reviewer a new password; every session they have open ends.

    \b
    Example:
        dealwatch user passwd ann                                 # asks for it twice
        printf '%s\\n' "$ANN_PASSWORD" | dealwatch user passwd ann --password-stdin
    """
    with state.store() as store:
        found = reviewer(store, name)  # an unknown name fails before the password is asked
        ended = change_password(store, name, _read_password(password_stdin, "New password"))
    click.echo(f"new password for reviewer {name}; {_sessions(ended)}"
               + (f" (still disabled: `dealwatch user enable {name}`)" if found.disabled else ""))


COMMANDS = (init, migrate, check_config, watchlist, user)
