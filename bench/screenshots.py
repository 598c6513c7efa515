"""Screenshots of the review UI on the demo data, for docs/screenshots/ (headless Chromium).

Usage: .venv/bin/python bench/screenshots.py [--out docs/screenshots] [--db PATH]

Runs the demo pipeline into a temporary database (`dealwatch demo`), makes a few decisions so
the status counts and the history have something to show, serves the review UI on 127.0.0.1
from a background thread and photographs the queue and a syndicated candidate with Debian's
chromium through Playwright, with the deals list, a deal and a merge's confirmation page: on a
1440 px desktop, and on a 390 px phone (`*-phone.png`).
Prints each file it wrote with what it shows.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from webfixtures import PASSWORD, add_reviewers, launch_chromium  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.review import decisions as review  # noqa: E402
from pipeline.review.reports import ClaimReader  # noqa: E402
from pipeline.review.web import create_app, running_server  # noqa: E402
from pipeline.storage import QueueQuery, Store  # noqa: E402


def prepare(db: Path) -> int:
    """Demo data with some decisions made (three deals filed); the id of a syndicated pending
    candidate."""
    subprocess.run([sys.executable, "-m", "pipeline.cli", "--db", str(db), "demo", "--limit", "1",
                    "--port", "0"], check=True, stdout=subprocess.DEVNULL)
    with Store(db) as store:
        if store.accounts.user("amina") is None:
            add_reviewers(store, "amina", "tomas")
        rows = store.candidates.queue(QueueQuery(status="pending", limit=None))
        syndicated = next(r for r in rows if len(r.copies) > 1)
        others = [r for r in rows if r.id != syndicated.id]
        if not store.reviews.reviews_of(syndicated.id):
            # the best one confirmed, the two lowest rejected and deferred (scores vary with
            # the ranker, so no fixed threshold)
            lowest = sorted(others, key=lambda r: r.score)
            review.decide(store, others[0].id, "confirm", "tomas")
            review.decide(store, lowest[0].id, "reject", "amina", reason="not_a_deal")
            review.decide(store, lowest[1].id, "defer", "tomas", note="check the ministry's site")
            review.edit(store, syndicated.id, "tomas", {"year": "2026"},
                        note="year from the ministry's press release")
            # two more deals, each its own, so the deals page has rows and a merge its pair
            taken = {others[0].id, lowest[0].id, lowest[1].id}
            for extra in [r for r in others if r.kind == "deal" and r.id not in taken][:2]:
                review.decide(store, extra.id, "confirm", "tomas", deal_id="new")
            # an aggregate claim ("… deals in … countries") is filed as a report
            aggregate = next((r for r in others if r.kind == "aggregate" and r.id not in taken),
                             None)
            if aggregate is not None:
                review.decide(store, aggregate.id, "confirm", "tomas",
                              claims=ClaimReader(load_config()))
        return int(syndicated.id)


DESKTOP = {"viewport": {"width": 1440, "height": 960}, "device_scale_factor": 1}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}


def log_in(browser: Any, base: str, options: dict[str, Any]) -> Any:
    page = browser.new_context(**options).new_page()
    page.goto(f"{base}/login")
    page.fill('input[name="name"]', "amina")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}/queue")
    return page


def shoot(base: str, out: Path, candidate_id: int) -> list[tuple[Path, str]]:
    """Photograph the pages; the files written, each with what it shows."""
    from playwright.sync_api import sync_playwright

    shots: list[tuple[Path, str]] = []

    def save(page: Any, name: str, what: str) -> None:
        path = out / name
        page.screenshot(path=str(path))
        shots.append((path, what))

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = log_in(browser, base, DESKTOP)
        page.keyboard.press("j")
        page.keyboard.press("x")
        page.keyboard.press("j")
        save(page, "queue.png", "the queue, 1440 px, one row selected for bulk reject")
        page.goto(f"{base}/candidate/{candidate_id}")
        save(page, "candidate.png", f"candidate #{candidate_id} (syndicated), 1440 px")
        page.goto(f"{base}/deals")
        save(page, "deals.png", "the registry's deals with their confidence grades, 1440 px")
        page.goto(f"{base}/deal/dw-000001")
        save(page, "deal.png", "deal dw-000001: fields, sources, triangulation, 1440 px")
        page.goto(f"{base}/deal/dw-000001/merge?absorb=dw-000002")
        save(page, "merge.png", "merging dw-000002 into dw-000001: what changes, asked first")
        if page.goto(f"{base}/report/rp-000001").ok:
            save(page, "report.png", "report rp-000001: an aggregate claim, its counts and outlet")
        phone = log_in(browser, base, PHONE)
        save(phone, "queue-phone.png", "the queue on a 390 px phone, filters folded")
        phone.goto(f"{base}/candidate/{candidate_id}")
        save(phone, "candidate-phone.png",
             f"candidate #{candidate_id} on a 390 px phone, the decisions in the bottom bar")
        phone.goto(f"{base}/deal/dw-000001")
        save(phone, "deal-phone.png", "deal dw-000001 on a 390 px phone")
        phone.goto(f"{base}/deals")
        phone.click("#filters summary")  # folded on a phone until asked for
        save(phone, "deals-phone.png", "the deals list on a 390 px phone, its filters unfolded")
        browser.close()
    return shots


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
            shots = shoot(base, args.out, candidate_id)
    for path, what in shots:
        print(f"{path}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
