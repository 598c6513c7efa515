"""Test helpers for crawls: serve a fixture site from tests/sites/ and write temp config dirs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from pipeline.demo.server import SiteServer, serve

# What some tests import to serve a directory made by write_site: pipeline.demo.server.serve.
serve_dir = serve

SITES_DIR = Path(__file__).resolve().parent / "sites"

# Crawl settings that keep a test crawl fast and local: no politeness delays, no retries.
FAST_CRAWL: dict[str, Any] = {
    "allow_private_networks": True,
    "download_delay": 0,
    "autothrottle": False,
    "retry_times": 0,
    "download_timeout": 10,
    "concurrent_requests_per_domain": 8,
}

def article_html(title: str, paragraphs: int = 3) -> str:
    """A small news article page (enough text to pass extraction's length floor)."""
    body = "".join(f"<p>{title}: paragraph {i} of a story written for the crawler tests, long "
                   "enough to read as running text, with a full stop at its end.</p>"
                   for i in range(paragraphs))
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}"
            f"</title></head><body><article><h1>{title}</h1>{body}</article></body></html>")


def rss_feed(links: list[str | tuple[str, str]]) -> str:
    """An RSS 2.0 feed of these links ({{base}} filled in by the server); (link, pubDate) pairs
    give items a date."""
    items = []
    for entry in links:
        link, date = entry if isinstance(entry, tuple) else (entry, None)
        pub = f"<pubDate>{date}</pubDate>" if date else ""
        items.append(f"<item><title>{escape(link.rsplit('/', 1)[-1])}</title>"
                     f"<link>{escape(link)}</link>{pub}</item>")
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
            + "".join(items) + "</channel></rss>")


def write_site(root: Path, files: dict[str, str | bytes],
               routes: dict[str, dict[str, Any]] | None = None) -> Path:
    """A fixture site in a temporary directory: path -> content, and an optional _routes.json."""
    for rel, content in files.items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if routes:
        (root / "_routes.json").write_text(json.dumps(routes), encoding="utf-8")
    return root


@contextmanager
def serve_site(name: str) -> Iterator[SiteServer]:
    """Serve tests/sites/NAME on 127.0.0.1 (a free port) for the duration of the block."""
    root = SITES_DIR / name
    if not root.is_dir():
        raise FileNotFoundError(f"no fixture site {root}")
    with serve(root) as server:
        yield server


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def source_toml(source_id: str, kind: str, urls: list[str], **fields: Any) -> str:
    """One [[source]] table of sources.toml."""
    lines = ["[[source]]", f"id = {_toml_value(source_id)}", f"kind = {_toml_value(kind)}",
             f"urls = {_toml_value(urls)}"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def write_config_dir(directory: Path, sources: list[str], **crawl: Any) -> Path:
    """A config dir with its own sources.toml and settings.toml ([crawl] = FAST_CRAWL + crawl).

    Other files fall back to the shipped ones.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sources.toml").write_text("\n".join(sources), encoding="utf-8")
    settings = {**FAST_CRAWL, **crawl}
    (directory / "settings.toml").write_text(
        "[crawl]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in settings.items()),
        encoding="utf-8")
    return directory
