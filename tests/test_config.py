"""Config validation: a bad file gives one line naming the file, the field and the problem."""

from __future__ import annotations

import pytest

from pipeline.config import SHIPPED_CONFIG_DIR, ConfigError, db_location, load_config


def test_shipped_config_is_valid() -> None:
    cfg = load_config(SHIPPED_CONFIG_DIR)
    ids = {e.id for e in cfg.watchlist}
    assert {"huawei", "zte", "hikvision"} <= ids
    assert all(not s.enabled for s in cfg.sources), "shipped sources must not reach the internet"
    assert cfg.settings.crawl.allow_private_networks is False
    assert "dealwatch" in cfg.settings.crawl.user_agent


def test_smallest_config_dir_from_design(make_config) -> None:
    directory = make_config({
        "sources.toml": '[[source]]\nid = "example-rss"\nkind = "rss"\n'
                        'urls = ["http://127.0.0.1:8000/feed.xml"]\nallowed_domains = ["127.0.0.1"]\n',
        "settings.toml": "[crawl]\nallow_private_networks = true\n",
    })
    cfg = load_config(directory)
    assert [s.id for s in cfg.sources] == ["example-rss"]
    assert cfg.settings.crawl.allow_private_networks is True
    # files the dir lacks come from the shipped config
    assert cfg.files["rules.toml"] == SHIPPED_CONFIG_DIR / "rules.toml"
    assert cfg.watchlist


@pytest.mark.parametrize(
    ("filename", "text", "expected"),
    [
        ("settings.toml", "[crawl]\ndownload_delay = -1\n", "settings.toml: crawl.download_delay:"),
        ("settings.toml", "[crawl]\nuser_agnet = 'x'\n", "settings.toml: crawl.user_agnet: unknown field"),
        ("settings.toml", "[crawl\n", "settings.toml: not valid TOML"),
        ("sources.toml", '[[source]]\nid = "a"\nkind = "gopher"\nurls = ["http://x.org/"]\n',
         "sources.toml: source[0].kind: Input should be"),
        ("sources.toml", '[[source]]\nid = "a"\nkind = "rss"\nurls = ["ftp://x.org/"]\n',
         "sources.toml: source[0].urls: Value error, not an http(s) URL"),
        ("sources.toml", '[[source]]\nid = "a"\nkind = "rss"\nurls = ["http://[::1/feed"]\n',
         "sources.toml: source[0].urls: Value error, not a valid URL: 'http://[::1/feed'"),
        ("sources.toml", '[[source]]\nid = "a"\nkind = "rss"\nurls = ["http://x.org:99999/"]\n',
         "sources.toml: source[0].urls: Value error, not a valid URL"),
        ("sources.toml", '[[source]]\nid = "a"\nkind = "rss"\nurls = ["http://x.org/"]\nallow = ["("]\n',
         "sources.toml: source[0].allow: Value error, invalid regular expression"),
        ("sources.toml", '[[source]]\nid = "a"\nkind = "rss"\nurls = ["http://x.org/"]\n'
                         '[[source]]\nid = "a"\nkind = "atom"\nurls = ["http://y.org/"]\n',
         "duplicate source id 'a'"),
        ("sources.toml", '[[source]]\nid = "Bad Id"\nkind = "rss"\nurls = ["http://x.org/"]\n',
         "sources.toml: source[0].id: String should match pattern"),
        ("sources.toml", '[[source]]\nkind = "rss"\nurls = ["http://x.org/"]\n',
         "sources.toml: source[0].id: Field required"),
        ("watchlist/vendors.jsonl", '{"id": "acme", "name": "Acme", "type": "vendor"}\n{"id": \n',
         "vendors.jsonl:2: not valid JSON"),
        ("watchlist/vendors.jsonl", '{"id": "acme", "name": "Acme", "type": "supplier"}\n',
         "vendors.jsonl:1: type: Input should be"),
        ("watchlist/vendors.jsonl", '{"id": "acme", "name": "Acme", "type": "vendor", "country": "China"}\n',
         "vendors.jsonl:1: country: String should match pattern"),
    ],
)
def test_bad_config_names_file_field_and_problem(make_config, filename, text, expected) -> None:
    directory = make_config({filename: text})
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert str(directory) in message


def test_duplicate_watchlist_id_across_files(make_config) -> None:
    directory = make_config({"watchlist/extra.jsonl": '{"id": "huawei", "name": "Huawei again", "type": "vendor"}\n'})
    with pytest.raises(ConfigError, match=r"jsonl:\d+: id: 'huawei' is already defined at .*jsonl:\d+"):
        load_config(directory)


def test_missing_config_dir(tmp_path) -> None:
    with pytest.raises(ConfigError, match="config directory not found"):
        load_config(tmp_path / "nope")


def test_db_path_precedence(monkeypatch, tmp_path) -> None:
    cfg = load_config(SHIPPED_CONFIG_DIR)
    monkeypatch.delenv("DEALWATCH_DB", raising=False)
    assert db_location(None, cfg.settings) == "data/dealwatch.db"
    monkeypatch.setenv("DEALWATCH_DB", str(tmp_path / "env.db"))
    assert db_location(None, cfg.settings) == str(tmp_path / "env.db")
    assert db_location(tmp_path / "opt.db", cfg.settings) == str(tmp_path / "opt.db")
    url = "postgresql://dealwatch@db.internal/dealwatch"  # as given: a Path would mangle it
    assert db_location(url, cfg.settings) == url
