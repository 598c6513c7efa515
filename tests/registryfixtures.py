"""Seeding helpers for the review, registry, export and push tests: stories written through the
store as the pipeline writes them (save_article, then save_analysis)."""

from __future__ import annotations

from typing import Any

from models.records import Article, Candidate
from pipeline.storage import Store


def story(store: Store, sentence: str, *, published: str | None = "2025-01-10",
          site: str = "nairobi-wire.test", title: str | None = None, cluster_of: int | None = None,
          url: str | None = None, score: float = 0.9, **fields: Any) -> int:
    """Store an article whose text holds `sentence`, with one deal candidate on that sentence;
    return the candidate's id. cluster_of: a candidate id whose story this one is a copy of."""
    n = store.counts()["articles"] + 1  # names and URLs follow the order stories were added
    lead = f"NAIROBI ({site}) - Officials spoke on story {n}."
    text = f"{lead} {sentence} The ministry said more would follow."
    start = len(lead) + 1
    url = url or f"https://{site}/news/{n}"
    article_id = store.articles.save_article(None, None, Article(
        url=url, canonical_url=url, text=text, text_hash=f"text-{n}", title=title or f"Story {n}",
        published=published, site=site, language="en"))
    base: dict[str, Any] = dict(
        kind="deal", vendor="huawei", vendors=["huawei"], country="KE",
        counterpart="Ministry of ICT", counterpart_type="ministry", deal_type="cloud",
        deal_types=["cloud"], stage="mou", value=None, currency=None, year=2025)
    base.update(fields)
    if base["vendor"] and "vendors" not in fields:
        base["vendors"] = [base["vendor"]]
    if base["deal_type"] and "deal_types" not in fields:
        base["deal_types"] = [base["deal_type"]]
    candidate = Candidate(score=score, sentence=sentence, start=start, end=start + len(sentence),
                          **base)
    with store.transaction():
        store.articles.save_analysis(article_id, [], [candidate], "test-analyser")
    if cluster_of is not None:
        lead_row = store.candidates.candidate(cluster_of)
        assert lead_row is not None
        store.articles.set_cluster(article_id, lead_row.cluster_id)
    row = store.db.execute("SELECT id FROM candidates WHERE article_id = ?", [article_id]).fetchone()
    return int(row[0])


def kenya_cloud(store: Store) -> dict[str, int]:
    """A small registry's worth of candidates: one Kenyan cloud deal reported three times over a
    year (MoU, signed, completed), a syndicated copy, a Ugandan safe-city deal and a non-deal."""
    ids = {
        "mou": story(store, "Huawei signed an MoU with Kenya's Ministry of ICT to build a "
                     "government cloud.", published="2025-01-10", stage="mou"),
        "signed": story(store, "Kenya's Ministry of ICT and Huawei signed the contract for the "
                        "government cloud, worth $120 million.", published="2025-06-02",
                        stage="signed", value=120_000_000.0, currency="USD",
                        site="daily-nation.test"),
        "completed": story(store, "Huawei has completed the Kenyan government cloud for the "
                           "Ministry of ICT.", published="2026-03-15", stage="completed"),
        "uganda": story(store, "Huawei will install 3,000 CCTV cameras for the Uganda Police "
                        "Force in Kampala.", published="2025-04-01", country="UG",
                        counterpart="Uganda Police Force", counterpart_type="agency",
                        deal_type="safe_city", stage="signed", site="monitor.test"),
        "noise": story(store, "Huawei launched a new phone in Nairobi on Tuesday.",
                       published="2025-05-05", stage="unknown", deal_type=None, deal_types=[],
                       counterpart=None, counterpart_type=None, score=0.3),
    }
    ids["copy"] = story(store, "Huawei signed an MoU with Kenya's Ministry of ICT to build a "
                        "government cloud.", published="2025-01-11", stage="mou",
                        site="syndicated.test", cluster_of=ids["mou"])
    return ids


def kenya_and_uganda(store: Store) -> dict[str, int]:
    """kenya_cloud's candidates with two deals filed: dw-000001, Kenya's cloud from its MoU (and
    the syndicated copy) and the signed contract, two outlets (grade B); dw-000002, Uganda's safe
    city, one outlet (C). The completed stage and the non-deal stay pending."""
    from pipeline.review.decisions import decide

    ids = kenya_cloud(store)
    deal_id = decide(store, ids["mou"], "confirm", "ann").deal_id
    decide(store, ids["signed"], "confirm", "ann", deal_id=deal_id)
    decide(store, ids["uganda"], "confirm", "ann")
    return ids


def searchable_registry(store: Store) -> dict[str, int]:
    """Four deals to filter, search and sort, filed in this order:

    dw-000001  Huawei, Kenya, cloud, signed, 2025: three sources (a syndicated copy), two
               outlets: grade B; reported 2025-01-10 – 2025-06-02.
    dw-000002  Huawei, Uganda, safe city, signed, 2025: one source, grade C; no counterpart.
    dw-000003  ZTE, Ethiopia, telecom network, awarded, 2024: three outlets, grade A; notes
               "Tender no. 7/2024".
    dw-000004  Hikvision and Huawei, South Africa, safe city and smart city, proposed, 2026: one
               source, grade C; counterpart eThekwini Municipality (not in the evidence).

    The candidates of the Kenyan cloud's later stages and a non-deal stay pending."""
    from pipeline.review.corrections import edit_deal
    from pipeline.review.decisions import decide

    ids = kenya_cloud(store)
    kenya = decide(store, ids["mou"], "confirm", "ann").deal_id
    decide(store, ids["signed"], "confirm", "ann", deal_id=kenya)
    uganda = decide(store, ids["uganda"], "confirm", "ann").deal_id
    assert kenya is not None and uganda is not None
    edit_deal(store, uganda, "ann", {"counterpart": ""})
    zte = [story(store, "ZTE will build Ethio Telecom's 5G core network in Addis Ababa.",
                 vendor="zte", country="ET", counterpart="Ethio Telecom", counterpart_type="soe",
                 deal_type="telecom_network", stage="awarded", year=2024, site=site,
                 published=f"2024-0{n}-15") for n, site in enumerate(
                     ("addis-standard.test", "capital.test", "reporter.test"), 3)]
    ethiopia = decide(store, zte[0], "confirm", "ann").deal_id
    assert ethiopia is not None
    for candidate in zte[1:]:
        decide(store, candidate, "confirm", "ann", deal_id=ethiopia)
    edit_deal(store, ethiopia, "ann", {"notes": "Tender no. 7/2024"})
    durban = story(store, "Hikvision and Huawei proposed a safe city for Durban.",
                   vendor="hikvision", vendors=["hikvision", "huawei"], country="ZA",
                   counterpart="eThekwini Municipality", counterpart_type="subnational",
                   deal_type="safe_city", deal_types=["safe_city", "smart_city"],
                   stage="proposed", year=2026, published="2026-02-01", site="mercury.test")
    decide(store, durban, "confirm", "ann")
    return {**ids, "ethiopia": zte[0], "durban": durban}
