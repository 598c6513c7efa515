"""Screenshots of the review UI on the demo data, for docs/screenshots/ (headless Chromium).

Usage: .venv/bin/python bench/screenshots.py [--out docs/screenshots] [--db PATH]

Runs the demo pipeline into a temporary database (`dealwatch demo`), makes a few decisions so
the status counts and the history have something to show, serves the review UI on 127.0.0.1
from a background thread and photographs the queue and a syndicated candidate with Debian's
chromium through Playwright.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from webfixtures import PASSWORD, add_reviewers, launch_chromium  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.review import decisions as review  # noqa: E402
from pipeline.review.web import create_app, running_server  # noqa: E402
from pipeline.storage import QueueQuery, Store  # noqa: E402


def prepare(db: Path) -> int:
    """Demo data with some decisions made; the id of a syndicated pending candidate."""
    subprocess.run([sys.executable, "-m", "pipeline.cli", "--db", str(db), "demo", "--limit", "1",
                    "--port", "0"], check=True, stdout=subprocess.DEVNULL)
    with Store(db) as store:
        if store.accounts.user("amina") is None:
            add_reviewers(store, "amina", "tomas")
        rows = store.candidates.queue(QueueQuery(status="pending", limit=None))
        syndicated = next(r for r in rows if len(r.copies) > 1)
        others = [r for r in rows if r.id != syndicated.id]
        if not store.reviews.reviews_of(others[0].id):
            review.decide(store, others[0].id, "confirm", "tomas")
            low = [r for r in others if r.score < 0.5]
            review.decide(store, low[0].id, "reject", "amina", reason="not_a_deal")
            review.decide(store, low[1].id, "defer", "tomas", note="check the ministry's site")
            review.edit(store, syndicated.id, "tomas", {"year": "2026"},
                        note="year from the ministry's press release")
        return int(syndicated.id)


def shoot(base: str, out: Path, candidate_id: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1440, "height": 960}, device_scale_factor=1)
        page.goto(f"{base}/login")
        page.fill('input[name="name"]', "amina")
        page.fill('input[name="password"]', PASSWORD)
        page.click('button[type="submit"]')
        page.wait_for_url(f"{base}/queue")
        page.keyboard.press("j")
        page.keyboard.press("x")
        page.keyboard.press("j")
        page.screenshot(path=str(out / "queue.png"))
        page.goto(f"{base}/candidate/{candidate_id}")
        page.screenshot(path=str(out / "candidate.png"))
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--db", type=Path, default=None, help="keep the demo database here")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dealwatch-shots-") as tmp:
        db = args.db or Path(tmp) / "demo.db"
        candidate_id = prepare(db)
        app = create_app(load_config(), db)
        with running_server(app) as base:
            shoot(base, args.out, candidate_id)
    for name in ("queue.png", "candidate.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
