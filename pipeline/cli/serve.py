"""The review web UI: serve."""

from __future__ import annotations

import click

from pipeline.cli.common import State, fail, pass_state
from pipeline.review.views import DEFAULT_HOST, DEFAULT_PORT


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to listen on.")
@click.option("--public", is_flag=True,
              help="Allow an address other than loopback (put TLS in front of it).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes answering on the one address; any of them serves any "
                   "reviewer (sessions and forms live in the database).")
@pass_state
def serve(state: State, host: str, port: int, public: bool, workers: int) -> None:
    """The review web UI (sign in with an account from `dealwatch user add`).

    \b
    Example:
        dealwatch serve                 # http://127.0.0.1:8765/
        dealwatch serve --host 0.0.0.0 --port 8080 --public
        dealwatch serve --workers 4 --db postgresql://review@db.internal/dealwatch
    """
    try:
        # Imported here: Starlette and Uvicorn are for this command alone.
        from pipeline.review.web import run_server
    except ModuleNotFoundError as exc:
        fail(f"the web UI cannot start: {exc}")
    run_server(state.config, state.db_path, host=host, port=port, allow_public=public,
               workers=workers)


COMMANDS = (serve,)
