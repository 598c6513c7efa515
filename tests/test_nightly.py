"""The nightly job as the scheduler starts it: `python -m pipeline.jobs.nightly`, in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sitefixtures import article_html, rss_feed, serve_dir, source_toml, write_config_dir, write_site

from pipeline.storage import Store

REPO = Path(__file__).resolve().parent.parent

DEAL_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Zambia picks Huawei for its data centre</title></head><body><article>
<h1>Zambia picks Huawei for its data centre</h1>
<p>Zambia's Ministry of Technology and Science signed a contract with Huawei on Monday to build
a national data centre in Lusaka, the ministry said in a statement.</p>
<p>The facility will host e-government services for several ministries, officials said, and is
due to open next year after a period of testing by the government's own engineers.</p>
</article></body></html>"""


def _nightly(db: Path, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.jobs.nightly", "--db", str(db),
                           "--config", str(config), *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=300, check=False)


def test_the_nightly_job_crawls_processes_and_exits_0(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", {
        "feed.xml": rss_feed(["{{base}}/a/deal.html", "{{base}}/a/other.html"]),
        "a/deal.html": DEAL_PAGE,
        "a/other.html": article_html("Rain expected across the region this weekend"),
    })
    db = tmp_path / "nightly.db"
    with serve_dir(site) as server:
        config = write_config_dir(tmp_path / "config", [source_toml(
            "wire", "rss", [server.base_url + "/feed.xml"], allowed_domains=["127.0.0.1"])])
        with (config / "settings.toml").open("a", encoding="utf-8") as settings:
            settings.write('[process]\nuse_model = "never"\n')
        done = _nightly(db, config)
    assert done.returncode == 0, done.stderr
    with Store(db) as store:
        assert store.db.execute("SELECT kind, outcome FROM runs").fetchall() == [("run", "ok")]
        assert store.count("articles") == 2
        found = store.db.execute("SELECT vendor, country FROM candidates WHERE kind = 'deal'"
                                 ).fetchall()
    assert ("huawei", "ZM") in found


def test_a_bad_config_is_one_line_and_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.toml").write_text("[crawl]\ndownload_delay = \"soon\"\n", encoding="utf-8")
    done = _nightly(tmp_path / "x.db", config)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert "settings.toml" in lines[0] and "download_delay" in lines[0]
    assert not (tmp_path / "x.db").exists()  # nothing was started


def test_a_usage_error_exits_2(tmp_path: Path) -> None:
    done = _nightly(tmp_path / "x.db", tmp_path, "--no-such-option")
    assert done.returncode == 2
    assert "--no-such-option" in done.stderr
