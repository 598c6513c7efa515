"""The schema: numbered migrations, each applied once in its own transaction (Database.migrate).

Long because it is the schema's whole history, in order: every migration's SQL and the accounts
file's versions, which are read together when one is added.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database as SqliteDatabase

from pipeline.urls import canonical_url

_SCHEMA_1 = """
CREATE TABLE sources (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT,
    urls TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    config TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT NOT NULL DEFAULT 'running',
    sources TEXT,
    counters TEXT NOT NULL DEFAULT '{}',
    message TEXT,
    pid INTEGER
);
CREATE TABLE pages (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    final_url TEXT,
    source_id TEXT REFERENCES sources(id),
    role TEXT NOT NULL DEFAULT 'article',
    status INTEGER,
    content_type TEXT,
    headers TEXT,
    etag TEXT,
    last_modified TEXT,
    fetched_at TEXT NOT NULL,
    content_hash TEXT,
    size INTEGER,
    html BLOB,
    error TEXT,
    referrer TEXT,
    listed_title TEXT,
    listed_date TEXT,
    run_id INTEGER REFERENCES runs(id),
    process_status TEXT,
    process_reason TEXT,
    processed_at TEXT,
    article_id INTEGER REFERENCES articles(id)
);
CREATE INDEX pages_to_process ON pages(role, process_status);
CREATE INDEX pages_source ON pages(source_id);
CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    canonical_url TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    page_id INTEGER REFERENCES pages(id),
    source_id TEXT REFERENCES sources(id),
    title TEXT,
    author TEXT,
    published TEXT,
    site TEXT,
    language TEXT,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL UNIQUE,
    cluster_id INTEGER,
    extracted_at TEXT NOT NULL,
    analysed_at TEXT,
    analyser TEXT
);
CREATE TABLE entities (
    id INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles(id),
    label TEXT NOT NULL,
    ent_id TEXT,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    UNIQUE (article_id, start, "end", label)
);
CREATE INDEX entities_lookup ON entities(label, ent_id);
CREATE TABLE candidates (
    id INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles(id),
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    vendor TEXT,
    vendors TEXT NOT NULL DEFAULT '[]',
    country TEXT,
    counterpart TEXT,
    counterpart_type TEXT,
    deal_type TEXT,
    deal_types TEXT NOT NULL DEFAULT '[]',
    stage TEXT,
    value REAL,
    currency TEXT,
    year INTEGER,
    score REAL NOT NULL,
    sentence TEXT NOT NULL,
    start INTEGER,
    "end" INTEGER,
    signals TEXT,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'confirmed', 'rejected', 'deferred')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX candidates_queue ON candidates(status, score DESC);
CREATE INDEX candidates_article ON candidates(article_id);
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    candidate_id INTEGER NOT NULL REFERENCES candidates(id),
    reviewer TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT,
    edits TEXT,
    note TEXT,
    previous_status TEXT
);
CREATE TRIGGER reviews_append_only_update BEFORE UPDATE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews is an append-only audit table'); END;
CREATE TRIGGER reviews_append_only_delete BEFORE DELETE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews is an append-only audit table'); END;
CREATE TABLE deals (
    id INTEGER PRIMARY KEY,
    deal_id TEXT NOT NULL UNIQUE,
    vendor TEXT,
    vendors TEXT NOT NULL DEFAULT '[]',
    country TEXT,
    counterpart TEXT,
    counterpart_type TEXT,
    deal_type TEXT,
    deal_types TEXT NOT NULL DEFAULT '[]',
    stage TEXT,
    value REAL,
    currency TEXT,
    year INTEGER,
    first_reported TEXT,
    last_reported TEXT,
    confirmed_by TEXT,
    confirmed_at TEXT,
    notes TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE deal_sources (
    deal_id INTEGER NOT NULL REFERENCES deals(id),
    candidate_id INTEGER NOT NULL REFERENCES candidates(id),
    article_id INTEGER REFERENCES articles(id),
    url TEXT,
    title TEXT,
    published TEXT,
    sentence TEXT,
    added_at TEXT NOT NULL,
    PRIMARY KEY (deal_id, candidate_id)
);
CREATE TABLE exports (
    id INTEGER PRIMARY KEY,
    exported_at TEXT NOT NULL,
    format TEXT NOT NULL,
    destination TEXT,
    since TEXT,
    deals INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT
);
"""


# --- the accounts file -------------------------------------------------------------------------
#
# Reviewers' credentials live in a second SQLite file beside the main database
# (`dealwatch.db` -> `dealwatch.db.accounts`), attached to every connection under this name. Its
# schema is versioned on its own (PRAGMA user_version): the file can be lost or left behind
# without the main database's migrations knowing, and a fresh one is made on the next open.

ACCOUNTS = "accounts"
_ACCOUNTS_SCHEMA_1 = f"""
CREATE TABLE IF NOT EXISTS {ACCOUNTS}.users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    last_login_at TEXT
);
CREATE TABLE IF NOT EXISTS {ACCOUNTS}.sessions (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {ACCOUNTS}.sessions_user ON sessions(user_id);
CREATE TABLE IF NOT EXISTS {ACCOUNTS}.login_failures (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {ACCOUNTS}.login_failures_lookup ON login_failures(name, address, at);
"""
# 2: the flash messages a session is shown on its next page ("Saved dw-000003 …"), here and not
# in a server's memory, so the page after a redirect shows them whichever process serves it.
# They go with their session (logout, expiry, a disabled reviewer): foreign keys are on.
_ACCOUNTS_SCHEMA_2 = f"""
CREATE TABLE IF NOT EXISTS {ACCOUNTS}.flashes (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {ACCOUNTS}.flashes_session ON flashes(session_id, id);
"""
_ACCOUNTS_STEPS = ((1, _ACCOUNTS_SCHEMA_1), (2, _ACCOUNTS_SCHEMA_2))
ACCOUNTS_VERSION = _ACCOUNTS_STEPS[-1][0]
# What migration 9 moves out of the main database, in the order the rows can be inserted.
_MOVED_TO_ACCOUNTS = (
    ("users", ("id", "name", "password_hash", "created_at", "disabled")),
    ("sessions", ("id", "user_id", "csrf_token", "created_at", "expires_at")),
    ("login_failures", ("id", "name", "address", "at")),
)


def ensure_accounts_schema(db: SqliteDatabase) -> None:
    """Create the tables of the attached accounts file when it is new, or add those of each
    newer version to an older one (its rows kept)."""
    version = int(db.execute(f"PRAGMA {ACCOUNTS}.user_version").fetchone()[0])
    if version >= ACCOUNTS_VERSION:
        return
    with db.atomic():
        for number, schema in _ACCOUNTS_STEPS:
            for statement in schema.split(";") if number > version else ():
                if statement.strip():
                    db.execute(statement)
        db.execute(f"PRAGMA {ACCOUNTS}.user_version = {ACCOUNTS_VERSION}")


def _migration_1(db: SqliteDatabase) -> None:
    db.executescript(_SCHEMA_1)


def _migration_2(db: SqliteDatabase) -> None:
    # Full-text search over articles, kept in step by triggers.
    db.table("articles").enable_fts(["title", "text"], create_triggers=True, tokenize="porter")


def _migration_3(db: SqliteDatabase) -> None:
    # The canonical form of each page URL, so "already stored?" survives tracking parameters,
    # www., http/https and AMP variants; and when a page was last checked (a 304 keeps the body).
    db.executescript("""
        ALTER TABLE pages ADD COLUMN canonical_url TEXT;
        ALTER TABLE pages ADD COLUMN checked_at TEXT;
        ALTER TABLE pages ADD COLUMN check_status INTEGER;
    """)
    rows = db.execute("SELECT id, COALESCE(final_url, url) FROM pages").fetchall()
    db.conn.executemany("UPDATE pages SET canonical_url = ? WHERE id = ?",
                        [(canonical_url(url), page_id) for page_id, url in rows])
    db.execute("CREATE INDEX pages_canonical ON pages(canonical_url)")


def _migration_4(db: SqliteDatabase) -> None:
    # MinHash signatures of article texts, kept so near-duplicate clustering works across runs.
    db.executescript("""
        CREATE TABLE article_signatures (
            article_id INTEGER PRIMARY KEY REFERENCES articles(id),
            num_perm INTEGER NOT NULL,
            shingles INTEGER NOT NULL,
            signature BLOB NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX articles_cluster ON articles(cluster_id);
        UPDATE articles SET cluster_id = id WHERE cluster_id IS NULL;
    """)


def _migration_5(db: SqliteDatabase) -> None:
    # Review and registry: who decided what (optimistic versions catch two reviewers at once),
    # reviewer accounts and sessions, deal stage history, merges, and pushes to a registry.
    db.executescript("""
        ALTER TABLE candidates ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE candidates ADD COLUMN reviewed_by TEXT;
        ALTER TABLE candidates ADD COLUMN reviewed_at TEXT;
        ALTER TABLE candidates ADD COLUMN reason TEXT;
        ALTER TABLE candidates ADD COLUMN note TEXT;
        ALTER TABLE candidates ADD COLUMN deal_id INTEGER REFERENCES deals(id);
        CREATE INDEX candidates_vendor ON candidates(status, vendor, score DESC);
        CREATE INDEX candidates_country ON candidates(status, country, score DESC);
        CREATE INDEX candidates_deal ON candidates(deal_id);
        ALTER TABLE reviews ADD COLUMN batch TEXT;
        ALTER TABLE reviews ADD COLUMN undoes TEXT;
        ALTER TABLE reviews ADD COLUMN previous TEXT;
        ALTER TABLE reviews ADD COLUMN version INTEGER;
        ALTER TABLE reviews ADD COLUMN deal_id INTEGER;
        CREATE INDEX reviews_candidate ON reviews(candidate_id, id);
        CREATE INDEX reviews_reviewer ON reviews(reviewer, id);
        CREATE INDEX reviews_batch ON reviews(batch);
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            csrf_token TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE TABLE login_failures (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            address TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX login_failures_lookup ON login_failures(name, address, at);
        ALTER TABLE deals ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE deals ADD COLUMN merged_into INTEGER REFERENCES deals(id);
        ALTER TABLE deals ADD COLUMN created_by_batch TEXT;
        ALTER TABLE deal_sources ADD COLUMN batch TEXT;
        CREATE TABLE deal_stages (
            id INTEGER PRIMARY KEY,
            deal_id INTEGER NOT NULL REFERENCES deals(id),
            stage TEXT NOT NULL,
            reported_at TEXT,
            recorded_at TEXT NOT NULL,
            candidate_id INTEGER REFERENCES candidates(id),
            reviewer TEXT,
            batch TEXT
        );
        CREATE INDEX deal_stages_deal ON deal_stages(deal_id, reported_at);
        CREATE TABLE deal_pushes (
            endpoint TEXT NOT NULL,
            deal_id INTEGER NOT NULL REFERENCES deals(id),
            version INTEGER NOT NULL,
            idempotency_key TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            pushed_at TEXT,
            PRIMARY KEY (endpoint, deal_id, version)
        );
    """)


def _migration_6(db: SqliteDatabase) -> None:
    # Deal ids never come back: a withdrawn deal's number (dw-000007) must not name another
    # deal, or a registry that saw the first would take the second for it.
    db.executescript("""
        CREATE TABLE deal_numbers (last INTEGER NOT NULL);
        INSERT INTO deal_numbers (last) SELECT COALESCE(MAX(id), 0) FROM deals;
    """)


def _migration_7(db: SqliteDatabase) -> None:
    # The ranker: what drove each score, whether the queue's default view shows the candidate
    # (candidates stored before keep showing until `process --rescore`), and the models trained
    # for this database (the newest is the default ranker of `process`).
    db.executescript("""
        ALTER TABLE candidates ADD COLUMN reasons TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE candidates ADD COLUMN queued INTEGER NOT NULL DEFAULT 1;
        CREATE TABLE rankers (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            created_at TEXT NOT NULL,
            summary TEXT NOT NULL
        );
    """)


def _migration_8(db: SqliteDatabase) -> None:
    # The language of each article (issue 9): `language` held what the page declared; now it is
    # the declared language confirmed by identification, beside what was declared, where the
    # language came from and how sure the identifier was. `supported`: 1 analysed in its
    # language, 0 not analysed (a language without patterns), NULL not analysed yet. Articles
    # stored before keep their declaration and are identified when next analysed
    # (`process --reanalyse`): language_source NULL says so.
    db.executescript("""
        ALTER TABLE articles ADD COLUMN language_declared TEXT;
        ALTER TABLE articles ADD COLUMN language_source TEXT;
        ALTER TABLE articles ADD COLUMN language_confidence REAL;
        ALTER TABLE articles ADD COLUMN supported INTEGER;
        UPDATE articles SET language_declared = language;
        UPDATE articles SET supported = 1 WHERE analysed_at IS NOT NULL;
        CREATE INDEX articles_language ON articles(language);
    """)


ACCOUNTS_MOVED = 9  # the migration that moved the reviewers' tables into the accounts file


def copy_accounts(db: SqliteDatabase) -> None:
    """Copy the reviewers' tables still in the main database into the accounts file (keyed by
    id: running it again adds nothing). Database.migrate commits it on its own before migration
    9 drops them: WAL commits are atomic per file, so the copy must be safe in the accounts file
    before the main file lets the tables go."""
    ensure_accounts_schema(db)
    present = {row[0] for row in db.execute(
        "SELECT name FROM main.sqlite_master WHERE type = 'table'").fetchall()}
    for table, columns in _MOVED_TO_ACCOUNTS:
        if table in present:
            names = ", ".join(columns)
            db.execute(f"INSERT OR IGNORE INTO {ACCOUNTS}.{table} ({names}) "
                       f"SELECT {names} FROM main.{table}")


def _migration_9(db: SqliteDatabase) -> None:
    # Reviewers' credentials leave the main database (issue 11): the password hashes, sessions
    # and failed logins move to the accounts file beside it (ACCOUNTS_SCHEMA), so whoever is
    # given the main database (Datasette, a copy for a colleague) never sees them. The copy is
    # made by copy_accounts, committed before this step (see PREPARE); copied again here, which
    # adds nothing, so the drop below never runs without it.
    # secure_delete zeroes the freed pages, so the hashes do not linger in the main file either.
    copy_accounts(db)
    present = {row[0] for row in db.execute(
        "SELECT name FROM main.sqlite_master WHERE type = 'table'").fetchall()}
    secure_delete = int(db.execute("PRAGMA main.secure_delete").fetchone()[0])
    db.execute("PRAGMA main.secure_delete = ON")
    for table, _ in reversed(_MOVED_TO_ACCOUNTS):  # sessions before the users they point to
        if table in present:
            db.execute(f"DROP TABLE main.{table}")
    db.execute(f"PRAGMA main.secure_delete = {secure_delete}")


def _migration_10(db: SqliteDatabase) -> None:
    # Registry corrections (issue 11): every merge, split and edit of a deal, and every undoing
    # of one, in an append-only audit that undo reads. No foreign keys to deals: a deal can be
    # withdrawn (its last source rejected) and its corrections stay on record.
    # `after_review` is the newest reviews row when the correction was made, so that a review
    # undo knows whether a registry correction came after the decision it would take back.
    db.executescript("""
        CREATE TABLE deal_corrections (
            id INTEGER PRIMARY KEY,
            reviewer TEXT NOT NULL,
            corrected_at TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('merge', 'split', 'edit', 'undo')),
            deal_id INTEGER NOT NULL,
            other_deal_id INTEGER,
            sources TEXT NOT NULL DEFAULT '[]',
            stages TEXT NOT NULL DEFAULT '[]',
            changes TEXT NOT NULL DEFAULT '{}',
            before TEXT NOT NULL DEFAULT '{}',
            versions TEXT NOT NULL DEFAULT '{}',
            batch TEXT NOT NULL,
            reverses INTEGER REFERENCES deal_corrections(id),
            undoes INTEGER REFERENCES deal_corrections(id),
            after_review INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX deal_corrections_reviewer ON deal_corrections(reviewer, id);
        CREATE INDEX deal_corrections_deal ON deal_corrections(deal_id, id);
        CREATE INDEX deal_corrections_other ON deal_corrections(other_deal_id, id);
        CREATE UNIQUE INDEX deal_corrections_undone ON deal_corrections(undoes)
            WHERE undoes IS NOT NULL;
        CREATE TRIGGER deal_corrections_append_only_update BEFORE UPDATE ON deal_corrections
        BEGIN SELECT RAISE(ABORT, 'deal_corrections is an append-only audit table'); END;
        CREATE TRIGGER deal_corrections_append_only_delete BEFORE DELETE ON deal_corrections
        BEGIN SELECT RAISE(ABORT, 'deal_corrections is an append-only audit table'); END;
    """)


def _migration_11(db: SqliteDatabase) -> None:
    # Triangulation (issue 11): a reviewer may say a deal's source is (1) or is not (0) an
    # official statement; NULL leaves it to the configured source's `official`. The counts and
    # the grade are computed when read, from deal_sources and articles, so they never go stale.
    db.execute("ALTER TABLE deal_sources ADD COLUMN official INTEGER "
               "CHECK (official IN (0, 1))")


def _migration_12(db: SqliteDatabase) -> None:
    # Reports (issue 11): an aggregate claim ("70 deals in 41 countries") is filed apart from
    # deals, with the counts and scope its sentence states. Its sources are its candidates
    # (candidates.report_id, as candidates.deal_id for deals): a report keeps no per-source
    # state (no stage, no official mark), and each candidate's article already holds its URL,
    # title and date. Report numbers are never reused, as deal numbers are not.
    # reviews.report_id records which report a confirmation filed, as reviews.deal_id does.
    db.executescript("""
        CREATE TABLE reports (
            id INTEGER PRIMARY KEY,
            report_id TEXT NOT NULL UNIQUE,
            candidate_id INTEGER NOT NULL REFERENCES candidates(id),
            article_id INTEGER REFERENCES articles(id),
            vendor TEXT,
            vendors TEXT NOT NULL DEFAULT '[]',
            counts TEXT NOT NULL DEFAULT '[]',
            deals INTEGER,
            countries INTEGER,
            scope TEXT,
            deal_types TEXT NOT NULL DEFAULT '[]',
            year INTEGER,
            sentence TEXT NOT NULL,
            outlet TEXT,
            url TEXT,
            title TEXT,
            published TEXT,
            notes TEXT,
            confirmed_by TEXT,
            confirmed_at TEXT,
            batch TEXT,
            version INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX reports_vendor ON reports(vendor);
        CREATE INDEX reports_batch ON reports(batch);
        CREATE TABLE report_numbers (last INTEGER NOT NULL);
        INSERT INTO report_numbers (last) VALUES (0);
        ALTER TABLE candidates ADD COLUMN report_id INTEGER REFERENCES reports(id);
        CREATE INDEX candidates_report ON candidates(report_id);
        ALTER TABLE reviews ADD COLUMN report_id INTEGER;
    """)


def _migration_13(db: SqliteDatabase) -> None:
    # Known deals (issue 11): deals loaded from another registry (`deals import`). external_id
    # is that registry's id, what a re-import recognises a deal by (unique among the deals that
    # have one); source_url the registry's source for it, which triangulation counts; where and
    # when it was last imported from; and the fields as that import gave them, so a re-import
    # changes only what the other registry changed since (a reviewer's correction stands).
    db.executescript("""
        ALTER TABLE deals ADD COLUMN external_id TEXT;
        ALTER TABLE deals ADD COLUMN source_url TEXT;
        ALTER TABLE deals ADD COLUMN imported_from TEXT;
        ALTER TABLE deals ADD COLUMN imported_at TEXT;
        ALTER TABLE deals ADD COLUMN imported_fields TEXT;
        CREATE UNIQUE INDEX deals_external_id ON deals(external_id) WHERE external_id IS NOT NULL;
    """)


def _migration_14(db: SqliteDatabase) -> None:
    # Undo restores exactly (issue 11). A report that a decision takes back is withdrawn, not
    # deleted: it keeps its number, who confirmed it and when, so that undoing that decision (or
    # confirming its story again) brings back rp-000001 itself, not a new number that breaks
    # links. A deal's source records the deal's fields its confirmation filled in, blanks until
    # then, so that taking the confirmation back empties them again (a known deal imported with
    # few fields is mostly blanks). And the registry looks sources and stage reports up by
    # candidate: indexed now.
    db.executescript("""
        ALTER TABLE reports ADD COLUMN withdrawn_at TEXT;
        ALTER TABLE deal_sources ADD COLUMN filled TEXT;
        CREATE INDEX IF NOT EXISTS deal_sources_candidate ON deal_sources(candidate_id);
        CREATE INDEX IF NOT EXISTS deal_stages_candidate ON deal_stages(candidate_id);
    """)


# A stage's place in a deal's life, as migration 15 indexed it: the queue's stage order
# (storage.queue) must read exactly so for SQLite to walk that index (a test checks the plan). A
# change to the stages takes a new migration that indexes the new expression.
STAGE_ORDER_15 = ("CASE stage WHEN 'proposed' THEN 0 WHEN 'mou' THEN 1 WHEN 'signed' THEN 2 "
                  "WHEN 'awarded' THEN 3 WHEN 'financed' THEN 4 WHEN 'under_construction' THEN 5 "
                  "WHEN 'completed' THEN 6 WHEN 'cancelled' THEN 7 WHEN 'unknown' THEN 8 END")


def _migration_15(db: SqliteDatabase) -> None:
    # The queue in every order at 100,000 candidates (issue 13: a page under 50 ms). Each order
    # pages by keyset on (its key, id), ties by id ascending either way, so each key has an index
    # per direction, led by the view's equalities (status, queued): a page walks one of them and
    # stops after its rows, where SQLite sorted every matching row before (0.3 s at 100k), and a
    # count under the default view counts from it. The date order is the article's date, copied
    # onto its candidates (an index cannot span the join); storage.articles keeps the copy in
    # step wherever an article or its candidates are written. candidates_queue (status, score)
    # gives way to the score order's two indexes.
    db.executescript(f"""
        ALTER TABLE candidates ADD COLUMN published TEXT;
        UPDATE candidates SET published =
            (SELECT a.published FROM articles a WHERE a.id = candidates.article_id);
        DROP INDEX IF EXISTS candidates_queue;
        CREATE INDEX candidates_by_score ON candidates(status, queued, score);
        CREATE INDEX candidates_by_score_desc ON candidates(status, queued, score DESC);
        CREATE INDEX candidates_by_date ON candidates(status, queued, published);
        CREATE INDEX candidates_by_date_desc ON candidates(status, queued, published DESC);
        CREATE INDEX candidates_by_vendor ON candidates(status, queued, vendor);
        CREATE INDEX candidates_by_vendor_desc ON candidates(status, queued, vendor DESC);
        CREATE INDEX candidates_by_country ON candidates(status, queued, country);
        CREATE INDEX candidates_by_country_desc ON candidates(status, queued, country DESC);
        CREATE INDEX candidates_by_stage ON candidates(status, queued, ({STAGE_ORDER_15}));
        CREATE INDEX candidates_by_stage_desc ON candidates(status, queued, ({STAGE_ORDER_15}) DESC);
    """)


# Steps committed on their own before a migration: for one that spans two files, whatever the
# second file must hold before the first lets it go.
PREPARE: dict[int, Callable[[SqliteDatabase], None]] = {ACCOUNTS_MOVED: copy_accounts}


MIGRATIONS: list[tuple[int, str, Callable[[SqliteDatabase], None]]] = [
    (1, "initial schema", _migration_1),
    (2, "full-text search on articles", _migration_2),
    (3, "canonical page URLs and last checks", _migration_3),
    (4, "near-duplicate signatures and clusters", _migration_4),
    (5, "review, reviewers and the registry", _migration_5),
    (6, "deal numbers are never reused", _migration_6),
    (7, "ranker reasons, queued flag and trained models", _migration_7),
    (8, "article languages: declared, identified, supported", _migration_8),
    (9, "reviewer credentials move to the accounts file", _migration_9),
    (10, "the audit of registry corrections", _migration_10),
    (11, "reviewers mark official sources", _migration_11),
    (12, "reports: aggregate claims filed apart from deals", _migration_12),
    (13, "known deals imported from another registry", _migration_13),
    (14, "withdrawn reports keep their number; what a confirmation filled in", _migration_14),
    (15, "indexes for every queue order; candidates carry their article's date", _migration_15),
]
