"""The local site server that the demo and the tests crawl."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from pipeline.demo.server import serve


@pytest.fixture
def site(tmp_path):
    (tmp_path / "feed.xml").write_text("<rss><link>{{base}}/a.html</link></rss>")
    (tmp_path / "a.html").write_text("<p>story</p>")
    (tmp_path / "_secret.toml").write_text("x = 1")
    (tmp_path / "_routes.json").write_text(json.dumps({
        "/old.html": {"status": 301, "location": "/a.html"},
        "/broken.html": {"status": 500},
        "/blob.bin": {"content_type": "application/octet-stream", "body": "\u0000\u0001"},
    }))
    with serve(tmp_path) as server:
        yield server


def _get(url: str, headers: dict[str, str] | None = None):
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5)


def test_base_url_is_filled_in(site) -> None:
    body = _get(site.base_url + "/feed.xml").read().decode()
    assert body == f"<rss><link>{site.base_url}/a.html</link></rss>"
    assert site.base_url.startswith("http://127.0.0.1:")


def test_conditional_get_answers_304(site) -> None:
    first = _get(site.base_url + "/a.html")
    etag = first.headers["ETag"]
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(site.base_url + "/a.html", {"If-None-Match": etag})
    assert info.value.code == 304
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(site.base_url + "/a.html", {"If-Modified-Since": first.headers["Last-Modified"]})
    assert info.value.code == 304


@pytest.mark.parametrize("path", ["/_secret.toml", "/_routes.json", "/../etc/passwd", "/nope.html"])
def test_hidden_and_missing_files_are_404(site, path: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(site.base_url + path)
    assert info.value.code == 404


def test_routes(site) -> None:
    assert _get(site.base_url + "/old.html").read() == b"<p>story</p>"  # redirect followed
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(site.base_url + "/broken.html")
    assert info.value.code == 500
    assert _get(site.base_url + "/blob.bin").headers["Content-Type"] == "application/octet-stream"
    assert "/old.html" in site.requests
