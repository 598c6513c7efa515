"""The review UI shows each candidate's language and filters the queue by it, escaped."""

from __future__ import annotations

import re
from types import SimpleNamespace

from test_web import CSP, audit, reviewer, web  # noqa: F401  (web is a fixture)
from webfixtures import XSS_SCRIPT, story

from pipeline.review.web import parse_queue_query, queue_params
from pipeline.storage import Store

ES = ("El Ministerio de Telecomunicaciones de Ecuador firmó un contrato con Huawei para un "
      "centro de datos del gobierno.")
PT = "O Governo de Angola assinou com a Huawei um contrato para a rede de fibra óptica."


def _seed_languages(web: SimpleNamespace) -> dict[str, int]:  # noqa: F811
    with Store(web.db) as store:
        es = story(store, 901, ES, ES, site="diario-andino.test", country="EC")
        pt = story(store, 902, PT, PT, site="jornal-luanda.test", country="AO")
        store.db.execute("UPDATE articles SET language = 'es', language_declared = 'en', "
                         "language_source = 'identified' WHERE id = (SELECT article_id FROM "
                         "candidates WHERE id = ?)", [es])
        store.db.execute("UPDATE articles SET language = 'pt', language_declared = 'pt', "
                         "language_source = 'declared+identified' WHERE id = (SELECT article_id "
                         "FROM candidates WHERE id = ?)", [pt])
        store.db.conn.commit()
    return {"es": es, "pt": pt}


def _ids(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<tr data-id="(\d+)"', html)]


def test_the_language_filter_reads_and_writes_the_query_string() -> None:
    assert parse_queue_query({"lang": "pt-BR"}).language == "pt"
    assert parse_queue_query({"lang": "<script>"}).language is None  # dropped, not an error
    assert queue_params(parse_queue_query({"lang": "es"})) == {"lang": "es"}


def test_queue_shows_a_language_badge_and_filters_by_language(web) -> None:  # noqa: F811
    ids = _seed_languages(web)
    client = reviewer(web, "alice")
    page = client.get("/queue").text
    assert re.search(r'<span class="tag tag-lang" lang="en" title="Article in Spanish">es</span>', page)
    assert '<select name="lang">' in page and '<option value="pt">Portuguese (pt)</option>' in page
    assert _ids(client.get("/queue?lang=es").text) == [ids["es"]]
    assert _ids(client.get("/queue?lang=pt").text) == [ids["pt"]]
    filtered = client.get("/queue?lang=pt").text
    assert '<option value="pt" selected>' in filtered
    # a candidate opened from a filtered queue keeps the filter in its links
    assert f'href="/candidate/{ids["pt"]}?lang=pt"' in filtered
    assert client.get("/queue?lang=zz").status_code == 200


def test_the_candidate_page_names_the_language_and_where_it_came_from(web) -> None:  # noqa: F811
    ids = _seed_languages(web)
    client = reviewer(web, "alice")
    page = client.get(f"/candidate/{ids['es']}").text
    assert "es (Spanish), identified; the page declared en" in page
    assert 'id="article-text" lang="es"' in page


def test_a_hostile_stored_language_is_escaped(web) -> None:  # noqa: F811
    """A database written by another tool may hold anything in articles.language."""
    ids = _seed_languages(web)
    with Store(web.db) as store:
        store.db.execute("UPDATE articles SET language = ? WHERE id = (SELECT article_id FROM "
                         "candidates WHERE id = ?)", [f'x">{XSS_SCRIPT}', ids["es"]])
        store.db.conn.commit()
    client = reviewer(web, "alice")
    for path in ("/queue", f"/candidate/{ids['es']}"):
        response = client.get(path)
        assert response.headers["content-security-policy"] == CSP
        assert XSS_SCRIPT not in response.text
        assert audit(response.text).problems == []
