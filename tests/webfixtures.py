"""Helpers for the web UI tests: a seeded review database, reviewers, headless Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from models.records import Article, Candidate, Entity
from pipeline.review import accounts
from pipeline.storage import Store

CHROMIUM = os.environ.get("DEALWATCH_CHROMIUM", "/usr/bin/chromium")
# Debian's chromium, never a browser Playwright downloads; flags for a container without a
# display, a GPU or a big /dev/shm, and no calls home.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PASSWORD = "correct-horse-battery"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[dev]'"
    return None


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def add_reviewers(store: Store, *names: str) -> None:
    for name in names:
        accounts.add_user(store, name, PASSWORD)


def story(store: Store, n: int, text: str, sentence: str, *, title: str | None = None,
          site: str = "nairobi-wire.test", url: str | None = None, published: str = "2026-03-04",
          source_id: str | None = None, cluster_of: int | None = None,
          entities: Iterable[tuple[str, str, str | None]] = (), **fields: Any) -> int:
    """Store one article holding `sentence`, tagged with `entities` (text, label, id) wherever
    their text occurs, and one candidate on the sentence; its candidate id."""
    url = url or f"https://{site}/news/{n}"
    article_id = store.articles.save_article(None, source_id, Article(
        url=url, canonical_url=url, text=text, text_hash=f"text-{n}", title=title or f"Story {n}",
        published=published, site=site, author="Wire staff", language="en"))
    if cluster_of is not None:
        lead = store.candidates.candidate(cluster_of)
        assert lead is not None
        store.articles.set_cluster(article_id, lead.cluster_id)
    start = text.index(sentence)
    found: list[Entity] = []
    for ent_text, label, ent_id in entities:
        at = text.find(ent_text)
        while at >= 0:
            found.append(Entity(text=ent_text, label=label, start=at, end=at + len(ent_text), id=ent_id))
            at = text.find(ent_text, at + 1)
    base: dict[str, Any] = dict(
        kind="deal", vendor="huawei", vendors=["huawei"], country="KE",
        counterpart="Ministry of ICT", counterpart_type="ministry", deal_type="cloud",
        deal_types=["cloud"], stage="signed", value=None, currency=None, year=2026, score=0.9)
    base.update(fields)
    if "vendors" not in fields:
        base["vendors"] = [base["vendor"]] if base["vendor"] else []
    if "deal_types" not in fields:
        base["deal_types"] = [base["deal_type"]] if base["deal_type"] else []
    with store.transaction():
        store.articles.save_analysis(article_id, found, [Candidate(
            sentence=sentence, start=start, end=start + len(sentence), **base)], "web-test")
    row = store.db.execute("SELECT id FROM candidates WHERE article_id = ?", [article_id]).fetchone()
    return int(row[0])


KENYA = [("Huawei", "VENDOR", "huawei"), ("Kenya", "COUNTRY", "KE"),
         ("Ministry of ICT", "AGENCY", None)]


def seed_review_queue(store: Store) -> dict[str, int]:
    """A queue to review: a syndicated story (two sites, one cluster), an article full of
    markup and script, and ordinary candidates with falling scores."""
    ids: dict[str, int] = {}
    cloud = ("Kenya's Ministry of ICT signed a $120 million contract with Huawei to build a "
             "government cloud, officials said.")
    ids["syndicated"] = story(
        store, 1, f"NAIROBI, March 3 - {cloud}\n\nThe data centre will host 40 state departments.",
        cloud, title="Kenya signs Huawei government cloud deal", site="nairobi-wire.test",
        score=0.97, value=120_000_000.0, currency="USD", entities=KENYA)
    ids["copy"] = story(
        store, 2, f"NAIROBI (Coastline Wire) - {cloud}\n\nReporting by the Coastline Wire desk.",
        cloud, title="Kenya, Huawei sign cloud contract", site="coastline-wire.test",
        published="2026-03-05", score=0.95, value=120_000_000.0, currency="USD",
        cluster_of=ids["syndicated"], entities=KENYA)
    evil = (f"Huawei signed a safe-city deal with Uganda's police {XSS_SCRIPT} worth "
            f"{XSS_IMG} millions.")
    ids["xss"] = story(
        store, 3, f"KAMPALA - {evil}\n\nA reader wrote: \" onmouseover=alert(2) x=\" and "
        f"<a href=\"javascript:alert(3)\">click</a>.", evil,
        title=f"{XSS_SCRIPT} Uganda police deal", site=f"<b>{XSS_IMG}</b>",
        url="javascript:alert(4)", score=0.93, country="UG",
        counterpart=f"Uganda Police {XSS_IMG}", counterpart_type="agency", deal_type="safe_city",
        entities=[("Huawei", "VENDOR", "huawei"), ("Uganda", "COUNTRY", "UG")])
    plain = [
        ("zte", "ET", "Ethio Telecom", "telecom_network", 0.9,
         "ZTE signed a deal with Ethio Telecom to build a 5G network in Addis Ababa."),
        ("hikvision", "ZA", "KwaZulu-Natal provincial government", "safe_city", 0.85,
         "Hikvision will supply 2,000 cameras to the KwaZulu-Natal provincial government."),
        ("huawei", "RS", "Telekom Srbija", "data_centre", 0.8,
         "Telekom Srbija and Huawei agreed to build a national data centre in Kragujevac."),
        ("dahua", "PH", "Department of Finance", "smart_city", 0.7,
         "Dahua signed an MoU with the Philippine Department of Finance for a smart city pilot."),
        ("zte", "BO", "Entel", "fibre_backbone", 0.6,
         "Entel awarded ZTE a contract to extend Bolivia's fibre backbone."),
    ]
    for i, (vendor, country, counterpart, dtype, score, sentence) in enumerate(plain, 4):
        ids[f"{vendor}-{country}"] = story(
            store, i, f"DATELINE - {sentence}\n\nMore details were not disclosed.", sentence,
            title=sentence[:60], site="meridian-ledger.test", vendor=vendor, country=country,
            counterpart=counterpart, counterpart_type="soe", deal_type=dtype, score=score,
            published=f"2026-02-{i:02d}")
    return ids


def browser_log_in(page: Any, base: str, name: str, then: str = "/queue") -> None:
    """Log a browser page in through the login form: ask for `then`, get the login page, sign
    in, land on `then`."""
    page.goto(f"{base}{then}")
    assert "/login" in page.url
    page.fill('input[name="name"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}{then}")


def logged_in(app: Any, name: str, password: str = PASSWORD) -> Any:
    """A Starlette TestClient of the app, logged in as `name` (the login form, its CSRF token
    and all), that the queue lets in."""
    import re

    from starlette.testclient import TestClient

    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    response = client.post("/login", data={"name": name, "password": password,
                                           "csrf_token": token.group(1)})
    assert response.status_code == 303, response.text
    assert client.get("/queue").status_code == 200
    return client
