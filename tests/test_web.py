"""The review web UI without a browser: headers, CSRF, login limits, escaping, binding, paging."""

from __future__ import annotations

import itertools
import random
import re
import select
import socket
import sqlite3
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.testclient import TestClient
from webfixtures import PASSWORD, XSS_IMG, XSS_SCRIPT, add_reviewers, seed_review_queue, story

from models.records import Entity
from models.registry import QueueEntry
from pipeline.config import load_config
from pipeline.review import decisions as review
from pipeline.review.present import evidence_span
from pipeline.review.web import (
    CSP,
    LOGIN_LIMIT,
    MAX_BODY_BYTES,
    MAX_FORM_FIELDS,
    MAX_LOGIN_BODY_BYTES,
    REASON_LABELS,
    Segment,
    ServeError,
    article_segments,
    check_bind,
    create_app,
    paragraphs,
    parse_cursor,
    review_ui_hint,
    run_server,
    running_server,
)
from pipeline.storage import QueueQuery, Store
from pipeline.storage.queue import QUEUE_SORTS, cursor_of


@pytest.fixture
def web(db_path: Path) -> SimpleNamespace:
    with Store(db_path) as store:
        ids = seed_review_queue(store)
        add_reviewers(store, "alice", "bob")
    app = create_app(load_config(), db_path, secure_cookies=False)
    return SimpleNamespace(app=app, ids=ids, db=db_path)


def login(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    return client.post("/login", data={"name": name, "password": password,
                                       "csrf_token": token.group(1)})


def reviewer(web: SimpleNamespace, name: str) -> TestClient:
    client = TestClient(web.app, follow_redirects=False)
    assert login(client, name).status_code == 303
    return client


def csrf(client: TestClient, path: str = "/queue") -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get(path).text)
    assert found
    return found.group(1)


def candidate(web: SimpleNamespace, ident: int) -> QueueEntry:
    with Store(web.db) as store:
        row = store.candidates.candidate(ident)
    assert row is not None
    return row


def decide_form(client: TestClient, web: SimpleNamespace, ident: int, **fields: Any) -> dict[str, Any]:
    return {"csrf_token": csrf(client), "version": candidate(web, ident).version, **fields}


# --- pure helpers ---------------------------------------------------------------------------


def test_segments_mark_evidence_and_entities_with_the_longest_entity_winning() -> None:
    text = "Lead. Huawei signed with the Ministry of ICT. Tail."
    start = text.index("Huawei")
    end = text.index(" Tail")
    entities = [Entity(text="Huawei", label="VENDOR", id="huawei", start=start, end=start + 6),
                Entity(text="Ministry of ICT", label="AGENCY", start=text.index("Ministry"),
                       end=text.index(".", start)),
                Entity(text="ICT", label="ORG", start=text.index("ICT"),
                       end=text.index("ICT") + 3)]
    segments = article_segments(text, (start, end), entities)
    assert "".join(s.text for s in segments) == text
    marked = [(s.text, s.evidence, s.label) for s in segments if s.evidence or s.label]
    assert marked[0] == ("Huawei", True, "VENDOR")
    assert ("Ministry of ICT", True, "AGENCY") in marked
    assert [s for s in segments if s.anchor] == [segments[1]]
    assert segments[-1] == Segment(" Tail.")


def test_overlapping_entities_segment_as_one_at_a_time_would() -> None:
    """The one-pass sweep gives what checking every entity at every cut gives."""

    def by_brute_force(text: str, evidence: tuple[int, int], entities: list[Entity]
                       ) -> list[tuple[str, bool, str | None, bool]]:
        cuts = sorted({0, len(text), *evidence, *(x for e in entities for x in (e.start, e.end))})
        out: list[tuple[str, bool, str | None, bool]] = []
        for left, right in itertools.pairwise(cuts):
            inside = evidence[0] <= left and right <= evidence[1]
            covering = [(e.end - e.start, i) for i, e in enumerate(entities)
                        if e.start <= left and right <= e.end]
            label = entities[max(covering)[1]].label if covering else None
            out += [(ch, inside, label, False) for ch in text[left:right]]
        return out

    rng = random.Random(5)
    text = "".join(rng.choice("abc \n") for _ in range(300))
    for _ in range(50):
        entities = []
        for i in range(rng.randint(0, 40)):
            start = rng.randint(0, 290)
            end = start + rng.randint(1, 30)
            entities.append(Entity(text=text[start:end], label=f"L{i}", start=start, end=end))
        entities = [e for e in entities if e.end <= len(text)]
        evidence = tuple(sorted(rng.sample(range(len(text) + 1), 2)))
        segments = article_segments(text, evidence, entities)
        assert "".join(s.text for s in segments) == text
        assert [s.anchor for s in segments].count(True) == 1
        per_char = [(ch, s.evidence, s.label, False) for s in segments for ch in s.text]
        assert per_char == by_brute_force(text, evidence, entities)
        looks = [(s.evidence, s.label, s.anchor) for s in segments]
        assert all(a != b or b[2] for a, b in itertools.pairwise(looks))  # merged


def test_evidence_span_falls_back_to_finding_the_sentence() -> None:
    text = "One.  Huawei signed a deal. Two."
    assert evidence_span(text, "Huawei signed a deal.", 6, 27) == (6, 27)
    assert evidence_span(text, "Huawei signed a deal.", 0, 3) == (6, 27)
    assert evidence_span(text, "Not there.", 0, 3) is None
    assert evidence_span(text, "Huawei signed a deal.", 40, 90) == (6, 27)


def test_queue_cursors_are_a_finite_score_and_a_row_id() -> None:
    assert parse_cursor("0.85:12") == (0.85, 12)
    assert parse_cursor(f"0.5:{2**63 - 1}") == (0.5, 2**63 - 1)
    for bad in (None, "", "0.5", "0.5:", ":12", "x:12", "0.5:-3", "0.5:1.5", "0.5:²",
                f"0.5:{2**63}", "0.5:" + "9" * 25, "0.5:" + "9" * 5000, "nan:1", "inf:1",
                "-inf:1"):
        assert parse_cursor(bad) is None, bad


def test_paragraphs_split_on_newlines_and_keep_the_anchor() -> None:
    segs = [Segment("Title\nfirst "), Segment("evidence\nsecond", evidence=True, anchor=True),
            Segment(" tail\n\nlast")]
    paras = paragraphs(segs)
    assert [[s.text for s in p] for p in paras] == [
        ["Title"], ["first ", "evidence"], ["second", " tail"], ["last"]]
    assert [s.text for p in paras for s in p if s.anchor] == ["evidence"]


# --- headers, pages and escaping ------------------------------------------------------------


class TagAudit(HTMLParser):
    """Collects what a strict CSP would refuse: inline scripts, on* handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.hrefs: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=>")
            if name == "style":
                self.problems.append(f"<{tag} style=>")
            if name == "href" and value:
                self.hrefs.append(value)
        if tag in ("img", "iframe", "object", "embed"):
            self.problems.append(f"<{tag}>")


def audit(html: str) -> TagAudit:
    parser = TagAudit()
    parser.feed(html)
    return parser


def test_every_page_sends_the_security_headers_and_no_inline_code(web) -> None:
    client = reviewer(web, "alice")
    pages = ["/queue", "/queue?status=all", f"/candidate/{web.ids['xss']}",
             f"/candidate/{web.ids['syndicated']}", "/deals", "/help", "/nowhere"]
    anonymous = TestClient(web.app, follow_redirects=False)
    responses = [client.get(p) for p in pages] + [anonymous.get("/login"),
                                                 anonymous.get("/static/app.css")]
    for response in responses:
        assert response.headers["content-security-policy"] == CSP
        assert "'unsafe-inline'" not in CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-frame-options"] == "DENY"
        if "text/html" in response.headers["content-type"]:
            assert response.headers["cache-control"] == "no-store"
            assert audit(response.text).problems == [], response.url
    assert responses[-3].status_code == 404


def test_scraped_markup_is_shown_as_text(web) -> None:
    client = reviewer(web, "alice")
    for path in (f"/candidate/{web.ids['xss']}", "/queue"):
        html = client.get(path).text
        assert XSS_SCRIPT not in html and XSS_IMG not in html
        assert "<script>alert" not in html and "onerror=alert" not in html.replace(
            "onerror=alert(1)&gt;", "")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        found = audit(html)
        assert found.problems == []
        assert not [h for h in found.hrefs if "javascript:" in h.lower()]
    page = client.get(f"/candidate/{web.ids['xss']}").text
    # the javascript: article URL is shown, not linked
    assert "javascript:alert(4)" in page and 'href="javascript:' not in page


# --- sessions, CSRF and logins --------------------------------------------------------------


def test_pages_need_a_login_and_posts_without_one_are_refused(web) -> None:
    anonymous = TestClient(web.app, follow_redirects=False)
    response = anonymous.get("/candidate/1?status=all")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fcandidate%2F1%3Fstatus%3Dall"
    refused = anonymous.post(f"/candidate/{web.ids['syndicated']}/decide",
                             data={"decision": "confirm", "version": "1"})
    assert refused.status_code == 403
    assert candidate(web, web.ids["syndicated"]).status == "pending"


def test_session_cookie_is_httponly_strict_and_secure_when_asked(web, db_path) -> None:
    client = TestClient(web.app, follow_redirects=False)
    cookie = login(client, "alice").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    secure_app = create_app(load_config(), db_path)  # the default: Secure, __Host- prefix
    page = TestClient(secure_app, base_url="https://127.0.0.1").get("/login")
    assert page.headers["set-cookie"].startswith("__Host-dealwatch-login=")
    assert "Secure" in page.headers["set-cookie"]


def test_login_redirects_only_to_this_site(web) -> None:
    client = TestClient(web.app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    response = client.post("/login", data={"name": "alice", "password": PASSWORD,
                                           "csrf_token": token, "next": "//evil.test/x"})
    assert response.headers["location"] == "/queue"


@pytest.mark.parametrize("path", ["/candidate/{id}/decide", "/candidate/{id}/edit", "/undo",
                                  "/bulk-reject", "/logout", "/deal/1/merge", "/deal/1/split",
                                  "/deal/dw-000001/edit", "/deals/undo"])
def test_every_post_without_the_csrf_token_is_refused(web, path) -> None:
    client = reviewer(web, "alice")
    ident = web.ids["syndicated"]
    data = {"decision": "reject", "reason": "other", "version": "1", "pick": f"{ident}:1",
            "stage": "awarded", "absorb": "2", "source": str(ident)}
    for token in (None, "not-the-token"):
        form = dict(data, **({"csrf_token": token} if token else {}))
        response = client.post(path.format(id=ident), data=form)
        assert response.status_code == 403, path
        assert "form token" in response.text
    row = candidate(web, ident)
    assert (row.status, row.stage, row.version) == ("pending", "signed", 1)
    assert client.get("/queue").status_code == 200  # still logged in


def test_a_post_from_another_origin_is_refused_even_with_the_token(web) -> None:
    client = reviewer(web, "alice")
    ident = web.ids["syndicated"]
    response = client.post(f"/candidate/{ident}/decide",
                           data=decide_form(client, web, ident, decision="confirm"),
                           headers={"origin": "http://evil.test"})
    assert response.status_code == 403
    assert candidate(web, ident).status == "pending"


def test_login_form_needs_its_token(web) -> None:
    client = TestClient(web.app, follow_redirects=False)
    client.get("/login")
    response = client.post("/login", data={"name": "alice", "password": PASSWORD})
    assert response.status_code == 403


def test_logins_are_rate_limited_per_name_and_address(web) -> None:
    client = TestClient(web.app, follow_redirects=False)
    assert login(client, "alice", "wrong-password").status_code == 401
    for _ in range(LOGIN_LIMIT - 1):
        response = login(client, "alice", "wrong-password")
        assert response.status_code == 401
        assert "Wrong name or password" in response.text
    blocked = login(client, "alice")  # the right password, too late
    assert blocked.status_code == 429
    assert "Too many failed logins" in blocked.text
    assert int(blocked.headers["retry-after"]) == 900
    # the same address trying another name is blocked too
    assert login(client, "bob").status_code == 429
    # someone else's address can still log in as bob
    with Store(web.db) as store:
        store.db.execute("UPDATE login_failures SET address = 'elsewhere'")
    other = TestClient(web.app, follow_redirects=False)
    assert login(other, "bob").status_code == 303


def test_logout_ends_the_session(web) -> None:
    client = reviewer(web, "alice")
    response = client.post("/logout", data={"csrf_token": csrf(client)})
    assert response.status_code == 303
    client.cookies.clear()
    with Store(web.db) as store:
        assert store.db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0


# --- binding --------------------------------------------------------------------------------


def test_only_loopback_without_the_public_flag() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, allow_public=False)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        with pytest.raises(ServeError, match="not a loopback address; pass --public"):
            check_bind(host, allow_public=False)
        check_bind(host, allow_public=True)


def test_run_server_refuses_a_public_host_before_starting(db_path) -> None:
    with pytest.raises(ServeError) as err:
        run_server(load_config(), db_path, host="0.0.0.0", port=1)
    assert "\n" not in str(err.value)


def test_serving_publicly_says_how_to_set_up_the_tls_proxy(db_path, monkeypatch, caplog) -> None:
    import uvicorn

    with Store(db_path):
        pass
    served: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(options))
    with caplog.at_level("WARNING", logger="pipeline.review.web"):
        run_server(load_config(), db_path, host="127.0.0.1", port=1, allow_public=True)
    assert served and served[0]["proxy_headers"] is True
    assert "proxy_set_header Host $host;" in caplog.text and "HTTPS" in caplog.text


def test_review_ui_hint_names_the_commands() -> None:
    hint = review_ui_hint(Path("/tmp/demo.db"), has_reviewers=False)
    assert "`dealwatch --db /tmp/demo.db user add NAME`" in hint
    assert "`dealwatch --db /tmp/demo.db serve`" in hint and "http://127.0.0.1:8765/" in hint
    assert "user add" not in review_ui_hint(Path("data/dealwatch.db"), has_reviewers=True)


def test_unknown_host_headers_are_refused_when_hosts_are_pinned(db_path) -> None:
    app = create_app(load_config(), db_path, secure_cookies=False,
                     allowed_hosts=["127.0.0.1", "localhost"])
    assert TestClient(app, base_url="http://rebound.evil.test").get("/login").status_code == 400
    assert TestClient(app, base_url="http://127.0.0.1:8765").get("/login").status_code == 200


# --- decisions ------------------------------------------------------------------------------


def test_confirm_with_edits_files_a_deal_and_advances(web) -> None:
    client = reviewer(web, "alice")
    ident = web.ids["syndicated"]
    response = client.post(f"/candidate/{ident}/decide", data=decide_form(
        client, web, ident, decision="confirm", stage="awarded", value="150000000",
        year="2025", counterpart="Ministry of ICT", note="checked the gazette", deal="auto"))
    assert response.status_code == 303
    assert response.headers["location"].startswith("/candidate/")  # the next one
    lead, copy = candidate(web, ident), candidate(web, web.ids["copy"])
    assert (lead.status, lead.stage, lead.value, lead.year, lead.reviewed_by) == \
        ("confirmed", "awarded", 150_000_000.0, 2025, "alice")
    assert copy.status == "confirmed" and copy.deal_id == lead.deal_id
    deal = client.get(f"/deal/{lead.deal_id}").text
    assert "awarded" in deal and "Stage history" in deal and "alice" in deal
    history = client.get(f"/candidate/{ident}").text
    assert "confirm" in history and "150000000" in history and "checked the gazette" in history


def test_reject_needs_a_reason_and_records_it(web) -> None:
    client = reviewer(web, "alice")
    ident = web.ids["zte-ET"]
    missing = client.post(f"/candidate/{ident}/decide",
                          data=decide_form(client, web, ident, decision="reject"))
    assert missing.status_code == 400 and "Choose a reason" in missing.text
    done = client.post(f"/candidate/{ident}/decide",
                       data=decide_form(client, web, ident, decision="reject", reason="domestic"))
    assert done.status_code == 303
    row = candidate(web, ident)
    assert (row.status, row.reason) == ("rejected", "domestic")


def test_a_bad_field_value_is_explained_and_nothing_is_written(web) -> None:
    client = reviewer(web, "alice")
    ident = web.ids["zte-ET"]
    response = client.post(f"/candidate/{ident}/decide", data=decide_form(
        client, web, ident, decision="confirm", country="Kenya", year="2026"))
    assert response.status_code == 400
    assert "ISO 3166-1 alpha-2" in response.text
    assert 'value="Kenya"' in response.text  # the reviewer's input is kept
    assert candidate(web, ident).status == "pending"


@pytest.mark.parametrize("second", [{"decision": "reject", "reason": "not_a_deal"},
                                    {"decision": "confirm", "stage": "completed"},
                                    {"decision": "defer"}])
def test_second_reviewer_is_told_and_nothing_is_overwritten(web, second) -> None:
    alice, bob = reviewer(web, "alice"), reviewer(web, "bob")
    ident = web.ids["hikvision-ZA"]
    form_alice = decide_form(alice, web, ident, decision="confirm")
    form_bob = decide_form(bob, web, ident, **second)
    assert alice.post(f"/candidate/{ident}/decide", data=form_alice).status_code == 303
    response = bob.post(f"/candidate/{ident}/decide", data=form_bob)
    assert response.status_code == 409
    assert "by alice" in response.text and "Nothing you sent was saved" in response.text
    row = candidate(web, ident)
    assert (row.status, row.reviewed_by, row.stage) == ("confirmed", "alice", "signed")
    with Store(web.db) as store:
        assert [(r.reviewer, r.decision) for r in store.reviews.reviews_of(ident)] == [
            ("alice", "confirm")]


def test_confirming_again_refiles_without_doubling_the_deal(web) -> None:
    client = reviewer(web, "alice")
    ident = web.ids["zte-BO"]
    client.post(f"/candidate/{ident}/decide", data=decide_form(client, web, ident, decision="confirm"))
    first_deal = candidate(web, ident).deal_id
    again = client.post(f"/candidate/{ident}/decide",
                        data=decide_form(client, web, ident, decision="confirm", stage="completed"))
    assert again.status_code == 303
    row = candidate(web, ident)
    with Store(web.db) as store:
        assert [s.candidate_id for s in store.registry.deal_sources(row.deal_id)] == [ident]
        assert sum(len(store.registry.deal_sources(d.id)) for d in store.registry.deals()) == 1
        assert [r.decision for r in store.reviews.reviews_of(ident)] == ["confirm", "confirm"]
    assert row.stage == "completed" and first_deal is not None


def test_edit_without_deciding(web) -> None:
    client = reviewer(web, "alice")
    ident = web.ids["dahua-PH"]
    response = client.post(f"/candidate/{ident}/edit", data=decide_form(
        client, web, ident, stage="mou", note="an MoU, not a contract"))
    assert response.status_code == 303
    row = candidate(web, ident)
    assert (row.status, row.stage, row.note) == ("pending", "mou", "an MoU, not a contract")
    # untouched fields keep their exact stored values
    assert row.deal_types == ["smart_city"] and row.counterpart == "Department of Finance"


def test_undo_takes_back_the_last_decision(web) -> None:
    client = reviewer(web, "alice")
    ident = web.ids["huawei-RS"]
    client.post(f"/candidate/{ident}/decide", data=decide_form(client, web, ident, decision="defer"))
    assert candidate(web, ident).status == "deferred"
    response = client.post("/undo", data={"csrf_token": csrf(client), "back": "/queue"})
    assert response.status_code == 303 and response.headers["location"] == "/queue"
    assert candidate(web, ident).status == "pending"
    again = client.post("/undo", data={"csrf_token": csrf(client), "back": "/queue"})
    assert again.status_code == 303
    assert "no decision to undo" in client.get("/queue").text


def test_bulk_reject_checks_versions(web) -> None:
    alice, bob = reviewer(web, "alice"), reviewer(web, "bob")
    a, b = web.ids["zte-BO"], web.ids["dahua-PH"]
    picks = [f"{a}:{candidate(web, a).version}", f"{b}:{candidate(web, b).version}"]
    bob.post(f"/candidate/{b}/decide", data=decide_form(bob, web, b, decision="confirm"))
    stale = alice.post("/bulk-reject", data={"csrf_token": csrf(alice), "pick": picks,
                                             "reason": "not_a_deal"})
    assert stale.status_code == 303
    assert "changed by bob" in alice.get("/queue").text
    assert candidate(web, a).status == "pending" and candidate(web, b).status == "confirmed"
    fresh = [f"{a}:{candidate(web, a).version}"]
    alice.post("/bulk-reject", data={"csrf_token": csrf(alice), "pick": fresh,
                                     "reason": "aggregate"})
    assert (candidate(web, a).status, candidate(web, a).reason) == ("rejected", "aggregate")


def test_cluster_copies_show_as_sources_and_are_decided_once(web) -> None:
    client = reviewer(web, "alice")
    queue = client.get("/queue").text
    assert f'data-id="{web.ids["syndicated"]}"' in queue
    assert f'data-id="{web.ids["copy"]}"' not in queue  # one entry for the story
    assert "+1 copy" in queue
    page = client.get(f"/candidate/{web.ids['syndicated']}").text
    assert "https://nairobi-wire.test/news/1" in page and "https://coastline-wire.test/news/2" in page
    assert "deciding decides" in page


def test_deal_page_merges_and_splits(web) -> None:
    client = reviewer(web, "alice")
    with Store(web.db) as store:
        first = review.decide(store, web.ids["syndicated"], "confirm", "alice", deal_id="new")
        second = review.decide(store, web.ids["huawei-RS"], "confirm", "alice", deal_id="new",
                               edits={"country": "KE"})
    page = client.get(f"/deal/{first.deal_id}").text
    assert '<option value="dw-000002">' in page  # same vendor and country: offered
    # a merge is shown first (what moves, what changes) and done only once confirmed
    asked = client.post("/deal/dw-000001/merge", data={"csrf_token": csrf(client),
                                                       "absorb": "dw-000002"})
    assert asked.status_code == 200 and "Merge dw-000002 into dw-000001?" in asked.text
    with Store(web.db) as store:
        assert store.registry.deal(second.deal_id).merged_into is None
    confirm = re.search(r'<form method="post" action="/deal/dw-000001/merge" id="merge-confirm".*?</form>',
                        asked.text, re.S).group(0)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', confirm))
    client.post("/deal/dw-000001/merge", data=fields)
    with Store(web.db) as store:
        assert len(store.registry.deal_sources(first.deal_id)) == 3
        assert store.registry.deal(second.deal_id).merged_into == first.deal_id
    response = client.post(f"/deal/{first.deal_id}/split", data={
        "csrf_token": csrf(client), "source": [str(web.ids["huawei-RS"])]})
    assert response.status_code == 303
    assert response.headers["location"] == "/deal/dw-000002"  # the merge taken back: its own id
    with Store(web.db) as store:
        assert [s.candidate_id for s in store.registry.deal_sources(second.deal_id)] == [web.ids["huawei-RS"]]
        assert len(store.registry.deal_sources(first.deal_id)) == 2
    assert "Moved 1 source" in client.get("/deal/dw-000002").text


def test_confirm_suggests_an_existing_deal(web) -> None:
    client = reviewer(web, "alice")
    with Store(web.db) as store:
        outcome = review.decide(store, web.ids["syndicated"], "confirm", "alice", deal_id="new")
        later = story(store, 50, "Huawei finished the Kenyan government cloud for the Ministry "
                      "of ICT.", "Huawei finished the Kenyan government cloud for the Ministry "
                      "of ICT.", stage="completed", score=0.8)
        deal = store.registry.deal(outcome.deal_id)
    page = client.get(f"/candidate/{later}").text
    assert f'value="{outcome.deal_id}"' in page and "Add to existing deal" in page
    assert deal.deal_id in page
    client.post(f"/candidate/{later}/decide", data=decide_form(
        client, web, later, decision="confirm", deal=str(outcome.deal_id)))
    assert candidate(web, later).deal_id == outcome.deal_id
    deal_page = client.get(f"/deal/{outcome.deal_id}").text
    stages = deal_page[deal_page.index("Stage history"):]
    assert stages.index(">signed<") < stages.index(">completed<")  # the history, oldest first


# --- the queue: filters, counts and keyset paging -------------------------------------------


def _many(store: Store, n: int) -> list[int]:
    vendors = ["huawei", "zte", "hikvision"]
    ids = []
    for i in range(n):
        sentence = f"Vendor deal number {i} was signed with a ministry."
        ids.append(story(store, 100 + i, f"Lead {i}. {sentence}", sentence,
                         vendor=vendors[i % 3], score=round(0.99 - (i // 2) * 0.005, 4),
                         deal_type=["cloud", "safe_city"][i % 2],
                         published=f"2025-{1 + i % 12:02d}-10", site=f"site{i % 4}.test"))
    return ids


def test_paging_walks_every_entry_once_in_score_order(web) -> None:
    with Store(web.db) as store:
        _many(store, 130)
        expected = [r.id for r in store.candidates.queue_page(QueueQuery(), 10_000)]
    client = reviewer(web, "alice")
    seen: list[int] = []
    url: str | None = "/queue"
    pages = []
    while url:
        html = client.get(url).text
        pages.append(url)
        seen += [int(m) for m in re.findall(r'<tr data-id="(\d+)"', html)]
        nxt = re.search(r'href="([^"]+)" rel="next"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    assert seen == expected and len(seen) == len(set(seen)) == 137
    assert len(pages) == 3
    assert "after=" in pages[1] and "OFFSET" not in pages[1]
    back = client.get(pages[2]).text
    prev = re.search(r'href="([^"]+)" rel="prev"', back).group(1).replace("&amp;", "&")
    assert [int(m) for m in re.findall(r'<tr data-id="(\d+)"', client.get(prev).text)] == \
        expected[50:100]


def test_queue_filters_and_counts(web) -> None:
    with Store(web.db) as store:
        _many(store, 30)
        review.decide(store, web.ids["zte-ET"], "reject", "bob", reason="domestic")
    client = reviewer(web, "alice")

    def ids(url: str) -> list[int]:
        return [int(m) for m in re.findall(r'<tr data-id="(\d+)"', client.get(url).text)]

    with Store(web.db) as store:
        def rows(**q: Any) -> list[QueueEntry]:
            return store.candidates.queue_page(QueueQuery(**q), 1000)

        assert {r.vendor for r in rows(vendor="zte")} == {"zte"}
        assert ids("/queue?vendor=zte") == [r.id for r in rows(vendor="zte")]
        safe = rows(deal_type="safe_city")
        assert safe and all("safe_city" in r.deal_types for r in safe)
        assert {r.published[:7] for r in rows(date_from="2025-03-01", date_to="2025-03-31")} \
            == {"2025-03"}
        assert ids("/queue?status=rejected") == [web.ids["zte-ET"]]
        assert ids("/queue?country=ke&stage=signed&kind=deal") == [
            r.id for r in rows(country="KE", stage="signed", kind="deal")]
        counts = store.candidates.queue_status_counts(QueueQuery())
        assert counts == {"pending": 37, "rejected": 1}
    page = client.get("/queue").text
    assert re.search(r"Pending <span class=\"count\">37</span>", page)
    assert re.search(r"Rejected <span class=\"count\">1</span>", page)
    # a filter value that names nothing is refused with the valid ones, never an empty queue;
    # a stale or mangled page cursor is only a link gone old: the first page
    refused = client.get("/queue?deal_type=<x>")
    assert refused.status_code == 400
    assert "deal_type" in refused.text and "safe_city" in refused.text
    assert "&lt;x&gt;" in refused.text and "<x>" not in refused.text
    assert client.get("/queue?from=yesterday").status_code == 400
    assert client.get("/queue?after=zzz").status_code == 200


@pytest.mark.parametrize("sort", list(QUEUE_SORTS))
@pytest.mark.parametrize("descending", [False, True])
def test_keyset_paging_walks_the_index_without_sorting(web, sort, descending) -> None:
    """Every order, both ways, forwards and back, and on into the entries without a value:
    each page walks its order's index under the default view, never sorting what matches (a
    third of a second at 100,000 candidates) nor skipping by OFFSET."""
    with Store(web.db) as store:
        _many(store, 20)
        story(store, 400, "Lead. An undated deal with no vendor.", "An undated deal with no vendor.",
              vendor=None, country=None, stage=None, published=None)
        query = QueueQuery(sort=sort, descending=descending)
        statements: list[str] = []
        store.db.conn.set_trace_callback(statements.append)
        rows = store.candidates.queue_page(query, 5)
        cursor = cursor_of(rows[-1], query)
        store.candidates.queue_page(query, 5, after=cursor)
        store.candidates.queue_page(query, 5, before=cursor)
        everything = store.candidates.queue_page(query, 1000)
        last = cursor_of(everything[-1], query)
        store.candidates.queue_page(query, 5, before=last)
        store.db.conn.set_trace_callback(None)
        if QUEUE_SORTS[sort].nullable:  # the undated entry without a vendor comes last
            assert last[0] is None
        pages = [sql for sql in statements if sql.startswith("SELECT c.*")]
        assert len(pages) >= 5
        for sql in pages:
            assert "OFFSET" not in sql.upper()
            plan = " | ".join(r[3] for r in store.db.execute("EXPLAIN QUERY PLAN " + sql))
            assert f"USING INDEX candidates_by_{sort}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan


# --- bad input and a busy database ------------------------------------------------------------


TOO_BIG = ["9" * 25, str(2**63), "9" * 5000]


def test_ids_no_row_can_have_are_not_found(web) -> None:
    client = reviewer(web, "alice")
    for ident in TOO_BIG:
        for path in (f"/candidate/{ident}", f"/deal/{ident}"):
            response = client.get(path)
            assert response.status_code == 404, path[:40]
            assert "There is nothing at this address" in response.text
        token = csrf(client)
        assert client.post(f"/candidate/{ident}/decide", data={
            "csrf_token": token, "decision": "defer", "version": "1"}).status_code == 404
    assert client.get(f"/candidate/{2**63 - 1}").status_code == 404  # the largest id: no row
    assert client.get("/candidate/%C2%B2").status_code == 404  # "²"
    # a cursor no row can have starts the queue from the top
    top = client.get("/queue").text
    for cursor in ("0.5:" + "9" * 25, "nan:1", "inf:5"):
        page = client.get("/queue", params={"after": cursor})
        assert page.status_code == 200
        assert re.findall(r'<tr data-id="(\d+)"', page.text) == \
            re.findall(r'<tr data-id="(\d+)"', top)


def test_form_numbers_that_are_not_ids_are_refused_politely(web) -> None:
    client = reviewer(web, "alice")
    ident = web.ids["zte-ET"]
    for version in ("²", "abc", "", "9" * 25):
        for action in ("decide", "edit"):
            response = client.post(f"/candidate/{ident}/{action}", data={
                "csrf_token": csrf(client), "decision": "defer", "version": version,
                "stage": "mou"})
            assert response.status_code == 400, (action, version)
            assert "no candidate version" in response.text and "invalid literal" not in \
                response.text
    assert candidate(web, ident).version == 1
    # "²" is a digit to str.isdigit(): neither a pick, nor a deal, nor a source
    bulk = client.post("/bulk-reject", data={"csrf_token": csrf(client), "reason": "other",
                                             "pick": ["²:1", f"{ident}:²", f"{2**63}:1"]})
    assert bulk.status_code == 303 and "Select candidates first" in client.get("/queue").text
    confirm = client.post(f"/candidate/{ident}/decide", data=decide_form(
        client, web, ident, decision="confirm", deal="²"))
    assert confirm.status_code == 303  # the best matching deal, else a new one
    deal_id = candidate(web, ident).deal_id
    for form in ({"source": "²"}, {"absorb": "²"}, {"absorb": "9" * 25}):
        action = "split" if "source" in form else "merge"
        response = client.post(f"/deal/{deal_id}/{action}", data={"csrf_token": csrf(client),
                                                                  **form})
        assert response.status_code == 303, form
    assert "choose the deal to merge" in client.get(f"/deal/{deal_id}").text


def test_forms_take_no_files_and_few_fields(web) -> None:
    client = reviewer(web, "alice")
    ident = web.ids["zte-ET"]
    upload = client.post(f"/candidate/{ident}/decide", data=decide_form(
        client, web, ident, decision="defer"), files={"attachment": ("a.txt", b"x" * 1000)})
    assert upload.status_code == 400 and "no files" in upload.text
    assert upload.headers["content-security-policy"] == CSP
    crowded = client.post("/bulk-reject", data={
        "csrf_token": csrf(client), "reason": "other",
        "pick": [f"{i}:1" for i in range(MAX_FORM_FIELDS + 1)]})
    assert crowded.status_code == 400
    assert candidate(web, ident).status == "pending"


def test_a_busy_database_is_a_503_page_and_nothing_is_written(db_path, make_config) -> None:
    with Store(db_path) as store:
        ids = seed_review_queue(store)
        add_reviewers(store, "alice")
    config = load_config(make_config({"settings.toml": "[database]\nbusy_timeout_ms = 50\n"}))
    web = SimpleNamespace(app=create_app(config, db_path, secure_cookies=False), ids=ids,
                          db=db_path)
    client = reviewer(web, "alice")
    ident = ids["zte-ET"]
    form = decide_form(client, web, ident, decision="reject", reason="domestic")
    writer = sqlite3.connect(db_path, isolation_level=None)  # the nightly run, say
    writer.execute("BEGIN IMMEDIATE")
    try:
        for path, data in ((f"/candidate/{ident}/decide", form),
                           ("/bulk-reject", {"csrf_token": form["csrf_token"], "reason": "other",
                                             "pick": f"{ident}:1"})):
            busy = client.post(path, data=data)
            assert busy.status_code == 503, path
            assert "The database is busy; try again" in busy.text
            assert busy.headers["retry-after"]
        assert client.get("/queue").status_code == 200  # reading never waits
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert candidate(web, ident).status == "pending"
    assert client.post(f"/candidate/{ident}/decide", data=form).status_code == 303


def test_every_rejection_reason_is_offered_and_named(web) -> None:
    client = reviewer(web, "alice")
    assert list(REASON_LABELS) == list(review.REJECT_REASONS)
    queue = client.get("/queue").text
    page = client.get(f"/candidate/{web.ids['zte-ET']}").text
    for code, label in REASON_LABELS.items():
        assert f'<option value="{code}">{label}</option>' in queue
        assert f'<option value="{code}">{label}</option>' in page
    ident = web.ids["zte-BO"]
    client.post("/bulk-reject", data={"csrf_token": csrf(client), "reason": "wrong_vendor",
                                      "pick": f"{ident}:1"})
    assert "Rejected 1 candidate(s) as Wrong vendor" in client.get("/queue").text
    refused = client.post("/bulk-reject", data={"csrf_token": csrf(client), "reason": "bogus",
                                                "pick": f"{web.ids['dahua-PH']}:1"})
    assert refused.status_code == 303 and "Choose a reason" in client.get("/queue").text
    assert candidate(web, web.ids["dahua-PH"]).status == "pending"


def test_queue_hides_low_scores_until_asked_and_the_candidate_says_why(web) -> None:
    sentence = "Huawei and Kenya's ICT ministry met to discuss cloud services."
    with Store(web.db) as store:
        low = story(store, 900, f"NAIROBI - {sentence} Talks go on.", sentence, score=0.12,
                    queued=False, reasons=["− no party named", "+ word 'cloud'"])
    client = reviewer(web, "alice")

    def ids(url: str) -> list[int]:
        return [int(m) for m in re.findall(r'<tr data-id="(\d+)"', client.get(url).text)]

    page = client.get("/queue").text
    assert low not in ids("/queue")
    threshold = load_config().rules.scoring.threshold
    assert f"1 pending candidate scored below the queue threshold {threshold:.2f} is hidden" in page
    assert 'href="/queue?scores=all"' in page
    assert low in ids("/queue?scores=all") and low in ids("/queue?min_score=0.1")
    assert low not in ids("/queue?min_score=0.2")
    assert "Hide low scores" in client.get("/queue?scores=all").text
    page = client.get(f"/candidate/{low}").text
    assert "Why this score" in page
    assert "− no party named" in page and "+ word &#39;cloud&#39;" in page
    assert "hidden from the queue" in page


# --- request bodies -------------------------------------------------------------------------


def _post_head(path: str, length: int | None, cookie: str = "") -> bytes:
    """The head of a POST sending a form of this length (None: chunked)."""
    size = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n{size}\r\n"
            + (f"Cookie: {cookie}\r\n" if cookie else "") + "\r\n").encode()


def _status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection without answering"
        head += chunk
    return int(head.split(b" ", 2)[1])


def test_big_bodies_are_refused_before_they_are_read(web) -> None:
    """The answer comes before any of the body is sent: a server reading it would wait."""
    with running_server(web.app) as base:
        port = int(base.rsplit(":", 1)[1])
        for path, length, status in (
                ("/login", MAX_LOGIN_BODY_BYTES + 1, 413),  # before login: the small limit
                ("/queue", 200_000_000, 413),  # every route: the general limit
                # a post that needs a session and has none is refused unread
                (f"/candidate/{web.ids['zte-ET']}/decide", MAX_BODY_BYTES, 403),
                ("/bulk-reject", MAX_BODY_BYTES, 403)):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(_post_head(path, length))
                assert _status(sock) == status, path


def test_a_streamed_body_is_read_no_further_than_the_login_limit(web) -> None:
    """Chunked, without a length: the server stops reading at the limit and answers 413,
    while the client still has most of its 200 MB to send."""
    frame = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    with running_server(web.app) as base, socket.create_connection(
            ("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=30) as sock:
        sock.sendall(_post_head("/login", None))
        sock.setblocking(False)
        sent, pending, answer = 0, b"", b""
        while sent < 200_000_000 and b"\r\n" not in answer:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                answer += sock.recv(4096)
            elif writable:
                pending = pending or frame
                try:
                    done = sock.send(pending)
                except OSError:  # the server closed the connection
                    break
                sent, pending = sent + done, pending[done:]
            else:
                break
        sock.setblocking(True)
        while b"\r\n" not in answer:
            answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert sent < 50_000_000, f"the server read {sent} bytes"


def test_forms_past_the_size_limits_are_a_413_page(web) -> None:
    client = reviewer(web, "alice")
    ident = web.ids["zte-ET"]
    big = client.post(f"/candidate/{ident}/decide", data=decide_form(
        client, web, ident, decision="defer", note="x" * MAX_BODY_BYTES))
    assert big.status_code == 413 and big.text == "Content Too Large"
    assert big.headers["content-security-policy"] == CSP
    assert candidate(web, ident).status == "pending"
    fine = client.post(f"/candidate/{ident}/decide", data=decide_form(
        client, web, ident, decision="defer", note="x" * 10_000))
    assert fine.status_code == 303 and candidate(web, ident).status == "deferred"
    anonymous = TestClient(web.app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', anonymous.get("/login").text)
    assert token
    long_login = anonymous.post("/login", data={"name": "alice", "password": "p" * MAX_LOGIN_BODY_BYTES,
                                                "csrf_token": token.group(1)})
    assert long_login.status_code == 413
