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
@pass_state
def serve(state: State, host: str, port: int, public: bool) -> None:
    """The review web UI (sign in with an account from `dealwatch user add`).

    \b
    Example:
        dealwatch serve                 # http://127.0.0.1:8765/
        dealwatch serve --host 0.0.0.0 --port 8080 --public
    """
    try:
        # Imported here: Starlette and Uvicorn are for this command alone.
        from pipeline.review.web import run_server
    except ModuleNotFoundError as exc:
        fail(f"the web UI cannot start: {exc}")
    run_server(state.config, state.db_path, host=host, port=port, allow_public=public)


COMMANDS = (serve,)
