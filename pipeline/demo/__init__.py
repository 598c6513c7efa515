"""The bundled demo news site and a config directory that crawls it."""

from __future__ import annotations

import errno
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config import SHIPPED_CONFIG_DIR
from pipeline.demo.server import SiteServer, running

logger = logging.getLogger(__name__)

DEMO_SITE_DIR = Path(__file__).resolve().parent / "site"
# A fixed port keeps the demo's article URLs the same from one run to the next, so a second
# `make demo` finds the articles it already has. Another free port is used when it is taken.
DEMO_PORT = 8711

DEMO_SETTINGS = """\
# Written by `dealwatch demo`: the demo site runs on this machine, so the crawl may reach it.
[crawl]
allow_private_networks = true
"""


@contextmanager
def serve_demo_site(port: int = DEMO_PORT) -> Iterator[SiteServer]:
    """Serve the demo site on 127.0.0.1 (the preferred port, else any free one)."""
    try:
        server = SiteServer(DEMO_SITE_DIR, port=port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or port == 0:
            raise
        logger.warning("port %d is taken; serving the demo site on a free port", port)
        server = SiteServer(DEMO_SITE_DIR, port=0)
    with running(server):
        yield server


def render_demo_sources(base_url: str) -> str:
    template = (DEMO_SITE_DIR / "_sources.toml").read_text(encoding="utf-8")
    return template.replace("{{base}}", base_url)


@contextmanager
def demo_config_dir(base_url: str, config_dir: Path | None = None) -> Iterator[Path]:
    """A temporary config dir: the demo's sources, loopback allowed, rules and watchlist of
    `config_dir` (or the shipped ones)."""
    base = Path(config_dir) if config_dir else SHIPPED_CONFIG_DIR
    with tempfile.TemporaryDirectory(prefix="dealwatch-demo-") as tmp:
        out = Path(tmp)
        (out / "sources.toml").write_text(render_demo_sources(base_url), encoding="utf-8")
        (out / "settings.toml").write_text(DEMO_SETTINGS, encoding="utf-8")
        if (base / "rules.toml").exists():
            shutil.copy(base / "rules.toml", out / "rules.toml")
        if (base / "watchlist").is_dir():
            shutil.copytree(base / "watchlist", out / "watchlist")
        yield out
