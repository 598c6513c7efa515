"""Schemas of the files in a config directory, validated once at the entry point."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SourceKind = Literal["rss", "atom", "sitemap", "news_sitemap", "listing"]
WatchlistType = Literal["vendor", "agency", "org"]
CounterpartType = Literal[
    "government", "ministry", "agency", "soe", "subnational", "intergovernmental", "unknown"
]
DealType = Literal[
    "cloud",
    "data_centre",
    "e_government",
    "telecom_network",
    "safe_city",
    "fibre_backbone",
    "smart_city",
    "other",
]
Stage = Literal[
    "proposed",
    "mou",
    "signed",
    "awarded",
    "financed",
    "under_construction",
    "completed",
    "cancelled",
    "unknown",
]
DEAL_TYPES: tuple[str, ...] = DealType.__args__  # type: ignore[attr-defined]
STAGES: tuple[str, ...] = Stage.__args__  # type: ignore[attr-defined]
# A stage's place in a deal's life (proposed first, then mou, signed, …): what sorting by stage
# goes by, in the queue's SQL and the deals list alike.
STAGE_RANK: dict[str, int] = {stage: rank for rank, stage in enumerate(STAGES)}
COUNTERPART_TYPES: tuple[str, ...] = CounterpartType.__args__  # type: ignore[attr-defined]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StrictValues(Strict):
    """Settings, sources and the watchlist: a boolean is true or false (not "yes", "on" or 1),
    a number is finite (not inf or nan), a string is a string."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _check_patterns(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return patterns


# --- settings.toml -------------------------------------------------------------------------


class DatabaseSettings(StrictValues):
    path: str = "data/dealwatch.db"
    busy_timeout_ms: int = Field(default=10_000, ge=0)
    reconnect_seconds: float = Field(
        default=60, ge=0, description="how long a worker reconnects to a PostgreSQL server that "
                                      "went away before it gives up")


class CrawlSettings(StrictValues):
    user_agent: str = "dealwatch/0.1 (+https://github.com/dealwatch/dealwatch; news monitoring)"
    allow_private_networks: bool = False
    obey_robots: bool = True
    download_delay: float = Field(default=1.0, ge=0)
    concurrent_requests: int = Field(default=16, ge=1)
    concurrent_requests_per_domain: int = Field(default=2, ge=1)
    autothrottle: bool = True
    autothrottle_target_concurrency: float = Field(default=1.0, gt=0)
    download_timeout: float = Field(default=30, gt=0)
    download_maxsize: int = Field(
        default=10 * 1024 * 1024, ge=0,
        description="largest response body fetched, in bytes (0, Scrapy's 'no limit', is refused)")
    download_warnsize: int = Field(default=2 * 1024 * 1024, ge=0, description="0: no warning")
    retry_times: int = Field(default=2, ge=0)
    retry_backoff_base: float = Field(
        default=2.0, ge=0, description="seconds before the first retry; doubles with each retry")
    retry_backoff_max: float = Field(default=60.0, ge=0, description="longest wait between retries")
    retry_after_max: float = Field(
        default=120.0, ge=0,
        description="longest Retry-After honoured; a server asking for more is not retried this run")
    max_redirects: int = Field(default=5, ge=0)
    max_items_per_source: int = Field(default=200, ge=1)
    max_age_days: int = Field(
        default=0, ge=0,
        description="listed articles dated longer ago are not fetched (every kind); 0: no limit")
    news_sitemap_max_age_days: int = Field(
        default=3, ge=0, description="the same for news_sitemap sources; 0: no limit")
    max_requests_per_run: int = Field(
        default=10_000, ge=0, description="HTTP requests of one crawl, all sources; 0: no limit")
    max_run_seconds: float = Field(
        default=7200, ge=0, description="wall time of one crawl, all sources, counted from its "
                                         "first request; 0: no limit")
    refetch_known_articles: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    @field_validator("download_maxsize")
    @classmethod
    def _maxsize_is_a_limit(cls, value: int) -> int:
        # Scrapy reads 0 as "no limit": one page could then cost any time and memory to process.
        if value == 0:
            raise ValueError("0 would mean no size limit to Scrapy; give the largest page to "
                             "fetch in bytes (default 10485760)")
        return value


class RetentionSettings(StrictValues):
    html_days: int = Field(default=90, ge=0, description="days to keep raw HTML; 0 keeps it forever")


class ProcessSettings(StrictValues):
    batch_size: int = Field(default=64, ge=1)
    use_model: Literal["auto", "never", "required"] = "auto"
    min_text_chars: int = Field(default=300, ge=0)
    max_text_chars: int = Field(
        default=100_000, ge=1_000,
        description="characters of one article that are analysed (its first ones); a longer "
                    "article is stored whole and recorded as 'too long'")
    ranker: str | None = Field(
        default=None, description="ranker model file (dealwatch train); default: the newest "
                                  "model trained for this database, else the shipped one")


class DedupSettings(StrictValues):
    near_duplicates: bool = True
    window_days: int = Field(default=30, ge=1, description="compare with articles this recent")
    jaccard: float = Field(default=0.3, gt=0, le=1)
    containment: float = Field(default=0.7, gt=0, le=1)
    shingle_words: int = Field(default=4, ge=1, le=12)
    num_perm: int = Field(default=128, ge=16, le=1024)


class ScheduleSettings(StrictValues):
    cron: str = Field(default="30 2 * * *", description="when the nightly run starts (crontab)")
    timezone: str = "UTC"
    catch_up_grace_hours: float = Field(
        default=6, ge=0, description="a run missed while the scheduler was down runs at start-up "
                                     "when it was due at most this long ago")
    stop_timeout_seconds: float = Field(default=120, ge=0)

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"not a crontab expression {value!r}: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class FrontierSettings(StrictValues):
    claim_ttl_seconds: int = Field(
        default=120, ge=3, description="a crawl worker's claim on a source lasts this long "
                                       "unless renewed: how soon a dead worker's source is taken")
    redis_retry_seconds: float = Field(
        default=60, ge=0, description="how long a worker retries a Redis that stopped answering")


class StatusSettings(StrictValues):
    stale_after_runs: int = Field(default=3, ge=1,
                                  description="flag a source with no new articles in this many runs")
    min_pages_for_yield: int = Field(default=5, ge=1)


class Settings(StrictValues):
    database: DatabaseSettings = DatabaseSettings()
    crawl: CrawlSettings = CrawlSettings()
    retention: RetentionSettings = RetentionSettings()
    process: ProcessSettings = ProcessSettings()
    dedup: DedupSettings = DedupSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    frontier: FrontierSettings = FrontierSettings()
    status: StatusSettings = StatusSettings()


# --- sources.toml ---------------------------------------------------------------------------


class Source(StrictValues):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    kind: SourceKind
    urls: list[str] = Field(min_length=1)
    name: str | None = None
    allowed_domains: list[str] = []
    allow: list[str] = Field(default=[], description="regexes an article URL must match (any)")
    deny: list[str] = Field(default=[], description="regexes that exclude an article URL")
    max_items: int | None = Field(default=None, ge=1)
    enabled: bool = True
    official: bool = Field(
        default=False,
        description="its articles are official statements (a government's or a vendor's own "
                    "site): a deal it reports is graded A (see README, Triangulation)")
    language: str | None = None
    download_delay: float | None = Field(default=None, ge=0)
    concurrent_requests_per_domain: int | None = Field(default=None, ge=1)
    autothrottle: bool | None = None
    headers: dict[str, str] = {}
    max_age_days: int | None = Field(
        default=None, ge=0,
        description="listed articles dated longer ago are not fetched; 0: no limit "
                    "(default: crawl.max_age_days, or crawl.news_sitemap_max_age_days)")
    unwrap_param: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]+$",
        description="query parameter of a listed link that holds the publisher's URL "
                    "(aggregator click-through links, e.g. Bing News: url)")

    @field_validator("urls")
    @classmethod
    def _urls_are_http(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not re.match(r"^https?://[^/\s]+", url):
                raise ValueError(f"not an http(s) URL: {url!r}")
            try:  # "http://[::1" or a port out of range fails here, not at crawl start
                parts = urlsplit(url)
                parts.port  # noqa: B018  (reading it validates it)
            except ValueError as exc:
                raise ValueError(f"not a valid URL: {url!r} ({exc})") from None
            if not parts.hostname:
                raise ValueError(f"not a valid URL: {url!r} (no host)")
        return urls

    @field_validator("allow", "deny")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return _check_patterns(patterns)


class Sources(StrictValues):
    source: list[Source] = []

    @model_validator(mode="after")
    def _unique_ids(self) -> Sources:
        seen: set[str] = set()
        for src in self.source:
            if src.id in seen:
                raise ValueError(f"duplicate source id {src.id!r}")
            seen.add(src.id)
        return self


# --- watchlist/*.jsonl ----------------------------------------------------------------------


class WatchlistEntry(StrictValues):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str = Field(min_length=1)
    aliases: list[str] = []
    type: WatchlistType
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    counterpart_type: CounterpartType | None = None
    private: bool = Field(
        default=False, description="a private company: a deal with it is not a government deal")
    case_sensitive: bool = Field(
        default=True, description="match names with their capitalisation (avoids look-alikes)"
    )
    patterns: list[list[dict[str, object]]] = Field(
        default=[], description="extra spaCy token patterns, e.g. 'Ministry of …'"
    )
    notes: str | None = None


# --- rules.toml -----------------------------------------------------------------------------


class Triggers(Strict):
    """Words that say a deal happened or is happening (lower-case entries match in any case)."""

    verbs: list[str] = Field(min_length=1, description="base forms; inflections are generated")
    nouns: list[str] = Field(min_length=1, description="singular forms; plurals are generated")
    weak_verbs: list[str] = Field(default=[], description="supporting verbs (build, supply): half weight")
    weak_nouns: list[str] = Field(default=[], description="supporting nouns (project): half weight")
    phrases: list[str] = Field(default=[], description="exact phrases (entered into), full weight")
    weak_phrases: list[str] = Field(default=[], description="exact phrases (carried out by), half weight")
    irregular: dict[str, list[str]] = Field(
        default={}, description="extra forms of irregular verbs, e.g. build = ['built']")


class SubdivisionCues(Strict):
    """Words that make a sub-national place of a name that is also a word or a surname."""

    before: list[str] = Field(description="before 'of' and the name: 'the province of Mendoza'")
    after: list[str] = Field(
        description="after the name (or its 's): 'Delta State', 'Mendoza's provincial government'")


class Counterparts(Strict):
    """How a government or state-owned counterpart shows itself, by counterpart_type."""

    words: dict[CounterpartType, list[str]] = Field(
        description="lower-case words in a sentence (government, state-owned, police)")
    heads: dict[CounterpartType, list[str]] = Field(
        description="capitalised heads of names: 'Ministry' of …, … 'Authority'")
    country_heads: dict[CounterpartType, list[str]] = Field(
        description="lower-case heads after a country: 'the Kenyan government', "
                    "'Egypt's telecom ministry'")
    place_heads: list[str] = Field(
        description="lower-case heads after any place and its modifiers: 'Sabah state government'")
    subdivision_nouns: list[str] = Field(
        description="lower-case nouns that, before 'of' and a place, make a sub-national "
                    "government of it: 'the province of Mendoza'")
    modifiers: dict[CounterpartType, list[str]] = Field(
        default={}, description="words before a head that say what kind of government it is: "
                                "'state', 'provincial'; 'federal', 'central'")
    subdivision_cues: SubdivisionCues
    soe_names: list[str] = Field(
        default=[], description="words that, next to a country, name a state operator: Telecom")


class Evidence(Strict):
    """How much a piece of evidence counts as a signal, before the signal's weight: how sure we
    are that a public body is a party to the deal, and how far evidence next door carries."""

    named: float = Field(default=1.0, gt=0, le=1, description="a named ministry, agency or state "
                         "company ('Telecom Egypt', 'Ministry of Interior'): the strongest party")
    actor: float = Field(default=0.7, ge=0, le=1, description="a country doing the deal "
                         "('Ethiopia has signed', 'a contract with Jujuy')")
    word: float = Field(default=0.5, ge=0, le=1, description="a bare word ('the government', "
                        "'police', 'state-owned')")
    neighbour: float = Field(default=0.8, ge=0, le=1, description="factor for what the next or "
                             "previous sentence (or the lede) says")
    own_sentence: float = Field(default=0.3, ge=0, description="added to a counterpart in the deal "
                                "word's own sentence: it beats a stronger-sounding one next door")
    neighbour_negative: float = Field(default=0.5, ge=0, le=1, description="a ban or lawsuit next "
                                      "door or in the lede (half this for a product or earnings word)")
    weak_negative_with_party: float = Field(
        default=0.3, ge=0, le=1, description="a product, earnings or training word in a sentence "
        "that names a public body as the other party ('a new revenue line for the state utility')")
    lede_sentences: int = Field(default=2, ge=0, description="sentences (the headline counts) "
                                "whose ban or amount speaks for the whole story")

    @model_validator(mode="after")
    def _ordered(self) -> Evidence:
        if not self.word <= self.actor < self.named:
            raise ValueError("word <= actor < named is required (a named body is the surest party)")
        return self


class Scoring(Strict):
    """Weights of the logistic score: score = 1 / (1 + exp(-(base + sum of weight * signal)))."""

    evidence: Evidence = Evidence()
    threshold: float = Field(default=0.5, ge=0, le=1,
                             description="evaluation counts candidates at or above as found")
    keep: float = Field(default=0.15, ge=0, le=1, description="drop candidates below this score")
    base: float = -3.0
    trigger: float = 1.5
    counterpart: float = 1.6
    country: float = 1.0
    deal_type: float = 0.8
    stage: float = 0.3
    value: float = 0.5
    vendor_nearby: float = -0.5
    negative: float = -3.0
    domestic: float = -3.0
    hedged: float = -0.6
    private: float = -2.0
    aggregate: float = -1.5
    cancelled: float = -2.0
    plan: float = -1.5
    lost: float = -3.0
    own_facility: float = 0.0
    no_trigger: float = -1.5
    aggregate_base: float = 0.2
    aggregate_survey: float = 0.8
    aggregate_type: float = 0.6
    aggregate_counterpart: float = 0.6


class Aggregate(Strict):
    count_nouns: list[str] = Field(min_length=1, description="what is counted: deals, projects")
    deal_nouns: list[str] = Field(
        min_length=1, description="the count_nouns that name deals (deals, contracts, projects): "
                                  "only a count of these is a claim's number of deals, not "
                                  "'3,000 sites'")
    scope_nouns: list[str] = Field(min_length=1, description="where: countries, nations")
    survey_words: list[str] = Field(default=[], description="a study or database: report, examined")
    global_words: list[str] = Field(default=[], description="no one place: worldwide, globally")
    many: int = Field(default=5, ge=2, description="a count of this many deals or more is many "
                                                    "deals, even in one country")

    @model_validator(mode="after")
    def _deal_nouns_are_counted(self) -> Aggregate:
        counted = {noun.casefold() for noun in self.count_nouns}
        for noun in self.deal_nouns:
            if noun.casefold() not in counted:
                raise ValueError(f"deal_nouns: {noun!r} is not among count_nouns (a deal noun is "
                                 "read only where it is counted)")
        return self


class Rules(Strict):
    triggers: Triggers
    deal_types: dict[DealType, list[str]]
    stages: dict[Stage, list[str]] = Field(description="the first listed stage found wins")
    weak_stages: dict[Stage, list[str]] = Field(
        default={}, description="words that suggest a stage only when no stage word is found "
                                "(a bare 'contract' is signed)")
    counterparts: Counterparts
    negative_contexts: list[str] = Field(
        min_length=1, description="bans, sanctions, espionage, lawsuits, denials: not a deal")
    weak_negative_contexts: list[str] = Field(
        default=[], description="products, earnings, sales channels, the vendor's own investment, "
                                "training: not a deal, unless the sentence names a public "
                                "counterpart (then they weigh less)")
    non_party_markers: list[str] = Field(
        default=[], description="words right before a vendor that make it no party to the deal "
                                "('chose Ericsson over Huawei')")
    hedges: list[str] = []
    concessives: list[str] = Field(
        default=[], description="'despite', 'amid': what follows up to the next comma is discounted")
    private_markers: list[str] = Field(
        default=[], description="signs of a private company counterpart (Sdn Bhd, distributor)")
    anaphora: list[str] = Field(
        default=[], description="words that refer back to a vendor named before (the company)")
    vendor_descriptors: list[str] = Field(
        default=[], description="words between a home country and a vendor's name that describe "
                                "the vendor ('China's largest telecom equipment maker, Huawei')")
    aggregate: Aggregate
    currencies: dict[str, list[str]] = Field(
        default={}, description="ISO 4217 code -> symbols and words written with amounts")
    currency_by_country: dict[str, dict[str, str]] = Field(
        default={}, description="a symbol several currencies share ('Sh') -> country -> code")
    domestic_territories: dict[str, list[str]] = Field(
        default={}, description="home country -> territories that count as home (CN: HK, MO)")
    scoring: Scoring = Scoring()


# --- patterns/<lang>/grammar.toml ---------------------------------------------------------


def _lower_case(words: list[str]) -> list[str]:
    for word in words:
        if word != word.lower():
            raise ValueError(f"{word!r} is matched in lower case: write it so")
    return words


class Reach(Strict):
    """How many tokens a phrase may span."""

    description: int = Field(ge=1, description="a home country to the vendor it describes")
    trigger: int = Field(ge=1, description="the deal word before 'with' and its party")
    subject: int = Field(ge=1, description="a vendor to the verb it is the subject of")
    negation: int = Field(ge=1, description="the words after a negator that it negates")


class GrammarWords(Strict):
    """Function words, each list read in lower case (see grammar.toml for what each does)."""

    auxiliaries: list[str]
    party_breaks: list[str]
    comparison_fillers: list[str]
    conjunctions: list[str]
    subject_conjunctions: list[str]
    description_fillers: list[str]
    company_possessives: list[str]
    place_lead: list[str]
    party_prepositions: list[str]
    unlisted_party_prepositions: list[str]
    national_scopes: list[str]
    many: list[str] = []
    negation_fillers: list[str] = []
    officer_prepositions: list[str] = []
    additive: list[str] = []
    # "our", "we": a plan said in the first person is the speaker's hope
    first_person: list[str] = []
    # "some", "des": before a public-body word in the plural, a market rather than a party
    indefinite: list[str] = []
    # "not", "no", "without": what a negator is (pipeline.analysis.cues); English when not given
    negators: list[str] = ["not", "no", "never", "without", "n't", "nor", "neither"]

    _lower = field_validator("*")(_lower_case)


class AmountWords(Strict):
    scales: dict[str, int] = Field(
        min_length=1, description="scale word after a number (case-sensitive) -> its value")
    decimal: Literal[".", ","] = Field(
        default=".", description="the decimal mark: '.' ('1,200.5 million'), ',' ('1.200,5 "
                                 "millones', '1 200,5 millions')")
    currency_joiners: list[str] = Field(
        default=[], description="words between a scale and a currency word: 'de' in "
                                "'50 millones de dólares'")

    @field_validator("scales")
    @classmethod
    def _scales(cls, scales: dict[str, int]) -> dict[str, int]:
        for word, value in scales.items():
            if not re.fullmatch(r"\w+(?: \w+)*", word) or value < 1:
                raise ValueError(f"{word!r} = {value}: a scale is a word (or words, 'mil "
                                 f"millones') and a positive number")
        return scales


class NameWords(Strict):
    """How the names of public bodies are built (pipeline.analysis.tag's agency matcher); English by
    default, so a grammar file written before this section keeps working."""

    of: list[str] = Field(default=["of", "for"], description="after a head: 'Ministry of …'")
    articles: list[str] = Field(default=["the"], description="after 'of': 'Ministry of the Interior'")
    connectors: list[str] = Field(
        default=["and", "&", ",", "of", "for", "de", "la", "du", "des", "del"],
        description="words that join a name's words: 'Information, Communications and …'")
    head_followers: list[str] = Field(
        default=["General", "-"], description="after a head, before 'of': 'Directorate General for'")
    national_words: list[str] = Field(
        default=["National", "State", "Public"],
        description="between a country and its operator word: 'Bolivia National Telecommunications'")
    company_suffixes: list[str] = Field(
        default=["Corp.", "Corp", "Corporation", "Company", "Limited", "Ltd", "Ltd."],
        description="after a state operator's name: 'Ethiopia Telecom Corp.'")
    government_words: list[str] = Field(
        default=["government"], description="before 'of' and a place: 'the government of Kenya'")
    state_words: list[str] = Field(
        default=["state"], description="before a description and a name: 'state telecom operator Entel'")
    police_words: list[str] = Field(default=["Police"], description="'… Police Service'")
    police_units: list[str] = Field(
        default=["Service", "Force", "Department", "Command", "Headquarters"])
    apposition_articles: list[str] = Field(
        default=["the", "a", "an"], description="'Zamtel, the state-owned operator'")
    place_of: list[str] = Field(
        default=["of", "in"], description="between a body and its country: 'Ministry of ICT of Kenya'")
    lower_inside: bool = Field(
        default=False, description="names go on in lower case after their head ('l'Agence "
                                   "nationale de l'informatique de l'État', 'la Délégation "
                                   "générale à la sûreté nationale'): French capitalises only "
                                   "a name's first word")
    head_first: bool = Field(
        default=False, description="names start with their head and go on with capitalised words "
                                   "before 'of' ('Agencia Nacional de …', 'Empresa Nacional de …'), "
                                   "and a country's adjective follows its head ('el gobierno "
                                   "boliviano')")

    _lower = field_validator("of", "articles", "connectors", "government_words", "state_words",
                             "apposition_articles", "place_of")(_lower_case)


class DateWords(Strict):
    months: list[str] = Field(min_length=1, description="month names and abbreviations, as written")
    year_leads: list[str] = Field(description="words right before a year that date the news: 'in'")
    range_words: list[str] = Field(description="lower-case words before a year that make it "
                                               "the start or end of a period: 'since', 'by'")
    range_joiners: list[str] = Field(description="words between two years of a period: 'to'")

    _lower = field_validator("range_words")(_lower_case)


class Grammar(Strict):
    """A language's grammar for the detector and the amounts-and-dates component."""

    reach: Reach
    words: GrammarWords
    amounts: AmountWords
    dates: DateWords
    names: NameWords = NameWords()
    # How the vocabularies' phrases are matched: "lower" (the words as written, English verb
    # forms and plurals generated: "sign", "signs", "signed"), or "lemma" (each phrase by its
    # lemmas, so that every inflection matches: "firmar" finds "firmó", "firmaron")
    phrase_match: Literal["lower", "lemma"] = "lower"
