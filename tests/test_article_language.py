"""Every article's language: read from the page, confirmed, stored, shown, filtered, and an
article in a language dealwatch does not read recorded as such (never analysed as English)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from schemafixtures import old_database

import pipeline.cli as cli_module
from models.records import Article, Candidate, Page, Passage
from pipeline.analysis.analyze import Analyzer
from pipeline.analysis.results import Analysis
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.ingest.extract import extract_article, html_document
from pipeline.jobs.process import process_pages, reanalyse_articles
from pipeline.language import identify
from pipeline.storage import MIGRATIONS, QueueQuery, Store

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both

SUPPORTED = frozenset({"en", "es", "pt", "fr"})

EN = ("NAIROBI – Kenya's ICT ministry signed a cloud contract with Huawei on Tuesday, officials "
      "said, to build a government data centre and extend the national fibre backbone. ")
ES = ("QUITO – El Ministerio de Telecomunicaciones de Ecuador firmó el martes un contrato con "
      "Huawei para construir un centro de datos del gobierno y ampliar la red de fibra óptica. ")
PT = ("LUANDA – O Ministério das Telecomunicações de Angola assinou na terça-feira um contrato "
      "com a Huawei para construir um centro de dados do governo e ampliar a rede de fibra. ")
FR = ("DAKAR – Le ministère de l'Économie numérique du Sénégal a signé mardi un contrat avec "
      "Huawei pour construire un centre de données de l'État et étendre le réseau de fibre. ")
ZH = ("华为公司周二与肯尼亚信息通信技术部签署了政府云计算合同，将建设一个政府数据中心，"
      "并扩建国家光纤骨干网。官员表示，该项目由中国进出口银行提供资金，预计明年完工。")
AR = ("وقعت وزارة الاتصالات الكينية يوم الثلاثاء عقدا مع شركة هواوي لبناء مركز بيانات حكومي "
      "وتوسيع شبكة الألياف الضوئية الوطنية، وقال مسؤولون إن المشروع سيكتمل العام المقبل. ")
RU = ("Министерство информационных технологий Кении во вторник подписало с компанией Huawei "
      "контракт на строительство государственного центра обработки данных и расширение сети. ")


def page_html(text: str, lang: str | None = None, title: str = "Story", repeat: int = 4) -> str:
    declared = f' lang="{lang}"' if lang else ""
    # numbered, so that no paragraph repeats another (extraction drops repeats)
    paragraphs = "".join(f"<p>{i + 1}. {text}</p>" for i in range(repeat))
    return (f"<html{declared}><head><title>{title}</title></head><body><article><h1>{title}</h1>"
            f"{paragraphs}</article></body></html>")


def stored_page(n: int, html: str) -> Page:
    return Page(url=f"https://news.test/{n}", source_id=None, status=200, body=html.encode(),
                headers={"content-type": "text/html; charset=utf-8"})


@pytest.fixture(scope="module")
def real() -> Analyzer:
    return Analyzer.from_config(load_config(), use_model="never")


class PerLanguage:
    """Stand-in for the per-language analyser (issue 9): it reads the languages it has patterns
    for, in the language the passage carries or that it identifies, and says so for the rest."""

    def __init__(self, real: Analyzer, supported: frozenset[str] = SUPPORTED) -> None:
        self.real, self.supported = real, supported
        self.version = real.version + "+languages"
        self.seen: list[Passage] = []

    @property
    def config(self):
        return self.real.config

    def analyze_many(self, passages, batch_size=64):
        for passage in passages:
            self.seen.append(passage)
            language = passage.language or identify(passage.text).code
            # the English chain stands in for every supported language's
            found = next(self.real.analyze_many([Passage(passage.text, passage.title, "en")]))
            if language not in self.supported:
                # what a careless analyser might return: processing must drop it all the same
                yield Analysis(found.entities, found.candidates, language, False)
                continue
            found.language, found.supported = language, True
            yield found


# --- extraction and processing --------------------------------------------------------------


def test_extraction_confirms_the_declared_language() -> None:
    article = extract_article(page_html(ES, "es-419"), "https://news.test/es").article
    assert article is not None
    assert (article.language, article.language_declared, article.language_source) == (
        "es", "es", "declared+identified")
    assert article.language_confidence is not None and article.language_confidence > 0.9


def test_a_page_declaring_the_wrong_language_is_stored_in_its_own() -> None:
    """A Spanish story on a template that says lang="en-US"; an English one saying "fr_FR"."""
    article = extract_article(page_html(ES, "en-US"), "https://news.test/es").article
    assert article is not None
    assert (article.language, article.language_declared, article.language_source) == (
        "es", "en", "identified")
    html = page_html(EN, None).replace("<head>", '<head><meta property="og:locale" content="fr_FR">')
    article = extract_article(html, "https://news.test/en").article
    assert article is not None and (article.language, article.language_declared) == ("en", "fr")


def test_processing_stores_each_articles_language_and_hands_it_to_the_analyser(store_location, real) -> None:
    pages = {1: page_html(EN, "en"), 2: page_html(ES, "es"), 3: page_html(PT, "pt-BR"),
             4: page_html(FR, "fr-FR"), 5: page_html("Actualización: " + ES, "en-US"),
             6: page_html("Atualização: " + PT, None)}
    analyser = PerLanguage(real)
    with Store(store_location) as store:
        for n, html in pages.items():
            store.pages.save_page(stored_page(n, html))
        report = process_pages(store, analyser)
        rows = store.db.execute(
            "SELECT a.url, a.language, a.language_declared, a.language_source, a.supported, "
            "p.process_status FROM articles a JOIN pages p ON p.article_id = a.id ORDER BY a.url"
        ).fetchall()
    assert [(r[0][-1], r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
        ("1", "en", "en", "declared+identified", 1, "article"),
        ("2", "es", "es", "declared+identified", 1, "article"),
        ("3", "pt", "pt", "declared+identified", 1, "article"),
        ("4", "fr", "fr", "declared+identified", 1, "article"),
        ("5", "es", "en", "identified", 1, "article"),
        ("6", "pt", None, "identified", 1, "article"),
    ]
    assert sorted(p.language for p in analyser.seen) == ["en", "es", "es", "fr", "pt", "pt"]
    assert report.counters["unsupported_language"] == 0


@pytest.mark.parametrize(("text", "code"), [(ZH, "zh"), (AR, "ar"), (RU, "ru")])
def test_a_script_dealwatch_does_not_read_is_recorded_unsupported(store_location, real, text, code) -> None:
    """Even declared English, and even when the analyser returns what it found: no candidate,
    no entity, a page verdict naming the language, and status counts it."""
    with Store(store_location) as store:
        store.pages.save_page(stored_page(1, page_html(text, "en", repeat=6)))
        store.pages.save_page(stored_page(2, page_html(EN, "en")))
        report = process_pages(store, PerLanguage(real))
        verdicts = dict(store.db.execute("SELECT url, process_status || ': ' || "
                                         "COALESCE(process_reason, '') FROM pages").fetchall())
        assert verdicts["https://news.test/1"] == f"unsupported: unsupported language: {code}"
        assert verdicts["https://news.test/2"] == "article: "
        article = store.db.execute("SELECT id, language, supported, analysed_at FROM articles "
                                   "WHERE url LIKE '%/1'").fetchone()
        assert article[1:3] == (code, 0) and article[3] is not None
        assert store.db.execute("SELECT COUNT(*) FROM candidates WHERE article_id = ?",
                                [article[0]]).fetchone()[0] == 0
        assert store.db.execute("SELECT COUNT(*) FROM entities WHERE article_id = ?",
                                [article[0]]).fetchone()[0] == 0
        assert store.counts()["candidates"] >= 1  # the English story's
        assert store.articles.unsupported_languages() == {code: 1}
    assert report.counters["unsupported_language"] == 1
    assert report.counters["articles"] == 2 and report.counters["failed"] == 0


def test_a_mixed_language_page_keeps_its_declared_language(store_location, real) -> None:
    html = page_html(EN, "en", repeat=2).replace("</article>", "".join(
        f"<p>{ES}</p>" for _ in range(2)) + "</article>")
    with Store(store_location) as store:
        store.pages.save_page(stored_page(1, html))
        process_pages(store, PerLanguage(real))
        row = store.db.execute("SELECT language, language_declared, supported FROM articles").fetchone()
        status = store.db.execute("SELECT process_status FROM pages").fetchone()[0]
    assert row == ("en", "en", 1) and status == "article"


def test_a_page_whose_language_cannot_be_told_is_recorded_and_not_analysed(store_location, real) -> None:
    """Nothing declared and nothing to identify (digits and symbols): no language, no crash."""
    numbers = " ".join(f"{n:,} – {n * 3:,} / {n % 7}." for n in range(1000, 1100))
    html = f"<html><body><article><p>{numbers}</p><p>{numbers}</p></article></body></html>"
    with Store(store_location) as store:
        store.pages.save_page(stored_page(1, html))
        report = process_pages(store, PerLanguage(real))
        status = store.db.execute("SELECT process_status, process_reason FROM pages").fetchone()
        if report.counters["articles"]:  # extraction may call it no article: a verdict as well
            assert status == ("unsupported", "unsupported language: unknown")
            assert store.articles.unsupported_languages() == {"unknown": 1}
        else:
            assert status[0] == "not_article"


def test_the_unsupported_verdict_keeps_the_too_long_note_and_goes_when_the_language_is_read(store_location, real) -> None:
    with Store(store_location) as store:
        store.pages.save_page(stored_page(1, page_html(ZH, "zh-CN", repeat=8)))
        process_pages(store, PerLanguage(real), max_text_chars=400)
        reason = store.db.execute("SELECT process_reason FROM pages").fetchone()[0]
        assert reason.startswith("unsupported language: zh; too long: ")
        # a later analyser that reads Chinese: process --reanalyse puts the page back
        reanalyse_articles(store, PerLanguage(real, SUPPORTED | {"zh"}))
        status, reason = store.db.execute("SELECT process_status, process_reason FROM pages").fetchone()
        assert status == "article" and reason.startswith("too long: ")
        assert store.articles.unsupported_languages() == {}


def test_reanalysis_takes_back_what_an_english_reading_found_in_an_unsupported_article(store_location, real) -> None:
    """A database filled before languages were told apart: an Arabic story read as English left
    pending candidates; re-analysed, they go (reviewed ones would stay)."""
    text = AR * 3 + " Huawei signed a cloud contract with Kenya's ICT ministry."
    with Store(store_location) as store:
        store.pages.save_page(stored_page(1, page_html(text, "ar")))
        process_pages(store, PerLanguage(real, SUPPORTED | {"ar"}))
        assert store.counts()["candidates"] >= 1
        reanalyse_articles(store, PerLanguage(real))
        assert store.counts()["candidates"] == 0
        assert store.articles.unsupported_languages() == {"ar": 1}


# --- the database before and after the migration ----------------------------------------------


def test_a_database_from_before_languages_migrates_and_is_identified_on_reanalysis(db_path, real) -> None:
    with old_database(db_path, 7) as old:
        old.db.execute(
            "INSERT INTO articles (canonical_url, url, title, language, text, text_hash, "
            "extracted_at, analysed_at, analyser) VALUES ('https://news.test/a', "
            "'https://news.test/a', 'Nota', 'en', ?, 'h1', '2026-01-01T00:00:00Z', "
            "'2026-01-01T00:00:00Z', 'old')", [ES * 3])
        old.db.conn.commit()
    with Store(db_path) as store:
        assert store.schema_version() == MIGRATIONS[-1][0]
        row = store.db.execute("SELECT language, language_declared, language_source, supported "
                               "FROM articles").fetchone()
        assert row == ("en", "en", None, 1)  # kept as it was: declared, not yet confirmed
        analyser = PerLanguage(real)
        reanalyse_articles(store, analyser)
        row = store.db.execute("SELECT language, language_declared, language_source, supported "
                               "FROM articles").fetchone()
        assert row == ("es", "en", "identified", 1)
        assert [p.language for p in analyser.seen] == ["es"]


# --- the queue, review show, status ---------------------------------------------------------


def _seed(store: Store) -> None:
    for n, (language, text) in enumerate((("es", ES), ("pt", PT), ("en", EN)), 1):
        article = Article(url=f"https://news.test/{n}", canonical_url=f"https://news.test/{n}",
                          text=text, text_hash=f"h{n}", title=f"Story {n} <b>",
                          language=language, language_declared="en" if language == "es" else language,
                          language_source="identified" if language == "es" else "declared+identified",
                          language_confidence=0.99)
        page_id = store.pages.save_page(stored_page(n, "<html></html>"))
        article_id = store.articles.save_article(page_id, None, article)
        cand = Candidate(kind="deal", vendor="huawei", vendors=["huawei"], country="EC",
                         counterpart=None, counterpart_type=None, deal_type="cloud",
                         deal_types=["cloud"], stage="signed", value=None, currency=None,
                         year=None, score=0.9 - n / 10, sentence=text.strip(), start=0,
                         end=len(text.strip()))
        store.articles.save_analysis(article_id, [], [cand], "test")
        store.articles.set_language_verdict(article_id, language, True)


@pytest.fixture
def run_cli(store_location, monkeypatch):
    monkeypatch.delenv("DEALWATCH_DB", raising=False)
    monkeypatch.delenv("DEALWATCH_CONFIG", raising=False)

    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(main, ["--db", str(store_location), *args], input=input)

    return invoke


def test_queue_filters_and_shows_the_language(store_location, run_cli) -> None:
    with Store(store_location) as store:
        _seed(store)
        assert [r.language for r in store.candidates.queue(QueueQuery(language="pt"))] == ["pt"]
    result = run_cli("queue", "--lang", "es")
    assert result.exit_code == 0, result.output
    assert "lang: es" in result.output and "lang: pt" not in result.output
    result = run_cli("queue", "--lang", "pt-BR", "--json")
    assert [r["language"] for r in json.loads(result.output)] == ["pt"]
    result = run_cli("review", "list", "--lang", "en", "--json")
    assert [r["language"] for r in json.loads(result.output)] == ["en"]
    result = run_cli("queue")
    assert [line.split("lang: ")[1][:2] for line in result.output.splitlines()
            if "lang: " in line] == ["es", "pt", "en"]
    result = run_cli("queue", "--lang", "klingon")
    assert result.exit_code == 2 and "no language code" in result.output


def test_review_show_says_the_language_and_where_it_came_from(store_location, run_cli) -> None:
    with Store(store_location) as store:
        _seed(store)
        candidate_id = store.candidates.queue(QueueQuery(language="es"))[0].id
    result = run_cli("review", "show", str(candidate_id))
    assert result.exit_code == 0, result.output
    assert "language: es (Spanish), identified; the page declared en" in result.output
    data = json.loads(run_cli("review", "show", str(candidate_id), "--json").output)
    assert (data["article"]["language"], data["article"]["language_declared"],
            data["article"]["language_source"]) == ("es", "en", "identified")


def test_status_counts_unsupported_articles_by_language(store_location, run_cli, real) -> None:
    with Store(store_location) as store:
        for n, text in enumerate((ZH, "新闻：" + ZH, AR), 1):
            store.pages.save_page(stored_page(n, page_html(text, None, repeat=6)))
        process_pages(store, PerLanguage(real))
    result = run_cli("status")
    assert result.exit_code == 0, result.output
    assert "in a language dealwatch does not read: 3 (zh 2, ar 1)" in result.output
    data = json.loads(run_cli("status", "--json").output)
    assert data["unsupported_languages"] == {"zh": 2, "ar": 1}


# --- dealwatch analyze ----------------------------------------------------------------------


@pytest.fixture
def standin(monkeypatch, real) -> PerLanguage:
    analyser = PerLanguage(real)
    monkeypatch.setattr(cli_module.State, "analyzer", lambda self, *a, **k: analyser)
    return analyser


def test_analyze_lang_sets_the_language_and_output_carries_it(run_cli, standin) -> None:
    result = run_cli("analyze", "-", "--lang", "es", input=ES)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["language"] == "es" and "supported" not in data
    assert standin.seen[-1].language == "es"
    result = run_cli("analyze", "-", input=PT)  # identified by the analyser
    assert json.loads(result.output)["language"] == "pt" and standin.seen[-1].language is None


def test_analyze_jsonl_records_carry_their_language(run_cli, standin) -> None:
    lines = "\n".join([
        json.dumps({"id": "a", "text": FR, "language": "fr-FR"}),
        json.dumps({"id": "b", "text": ES}),  # --lang below
        json.dumps({"id": "c", "html": page_html(PT, "pt-BR")}),  # the page's, confirmed
        json.dumps({"id": "d", "text": ZH}),
        json.dumps({"id": "e", "text": ES, "language": "xx-YY"}),
    ])
    result = run_cli("analyze", "--jsonl", "-", input=lines)
    assert result.exit_code == 1  # one record could not be read: said, the others analysed
    out = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(o["id"], o["language"]) for o in out[:4]] == [
        ("a", "fr"), ("b", "es"), ("c", "pt"), ("d", "zh")]
    assert out[3]["supported"] is False and out[3]["candidates"] == []
    assert "no language code" in result.output
    assert [p.language for p in standin.seen[:4]] == ["fr", None, "pt", None]
    # --lang says what the input is in; a record's own "language" still comes first
    result = run_cli("analyze", "--jsonl", "-", "--lang", "es", input="\n".join(lines.splitlines()[:4]))
    assert [json.loads(line)["language"] for line in result.stdout.splitlines()] == ["fr", "es", "es", "es"]


def test_analyze_says_when_a_language_is_unsupported(run_cli, standin) -> None:
    result = run_cli("analyze", "-", input=ZH)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data == {"id": "-", "language": "zh", "supported": False, "entities": [],
                    "candidates": []}


def test_an_html_document_carries_its_confirmed_language() -> None:
    assert html_document(page_html(FR, "fr")).language == "fr"
    assert html_document(page_html(ES, "en")).language == "es"  # the declaration was wrong
    assert html_document("<p>Hola</p>").language is None  # too short to tell, nothing declared


def test_a_database_path_fixture_is_fresh(db_path: Path) -> None:
    assert not db_path.exists()


def test_the_real_analyser_reads_its_languages_and_records_the_rest(store_location, real) -> None:
    """With the per-language analyser itself: an English story is analysed; a Chinese one is
    recorded unsupported; a Spanish one is analysed exactly when there is a Spanish folder."""
    with Store(store_location) as store:
        store.pages.save_page(stored_page(1, page_html(EN, "en")))
        store.pages.save_page(stored_page(2, page_html(ZH, "en", repeat=6)))
        store.pages.save_page(stored_page(3, page_html(ES, "es")))
        report = process_pages(store, real)
        rows = dict(store.db.execute(
            "SELECT substr(a.url, length(a.url)), a.language || ' ' || a.supported || ' ' || p.process_status "
            "FROM articles a JOIN pages p ON p.article_id = a.id").fetchall())
    spanish = "es" in real.languages
    assert rows == {"1": "en 1 article", "2": "zh 0 unsupported",
                    "3": f"es {int(spanish)} {'article' if spanish else 'unsupported'}"}
    assert report.counters["unsupported_language"] == 1 + (not spanish)


def test_shipped_sources_cover_spanish_portuguese_and_french_disabled() -> None:
    from collections import Counter

    from pipeline.config import SHIPPED_CONFIG_DIR

    sources = load_config(SHIPPED_CONFIG_DIR).sources
    by_language = Counter(s.language for s in sources)
    assert all(by_language[lang] >= 4 for lang in ("es", "pt", "fr")), by_language
    for lang in ("spanish", "portuguese", "french"):  # discovery limited to the language
        assert any(f"sourcelang:{lang}" in url for s in sources for url in s.urls)
    assert not any("news.google.com" in url for s in sources for url in s.urls)
    assert not any(s.enabled for s in sources)
