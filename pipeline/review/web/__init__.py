"""The review web UI (`dealwatch serve`): server-rendered pages over the review functions.

The package, its parts in dependency order:

- `forms` and `highlight`: pure helpers (what goes in and out of URLs and forms: row ids, queue
  filters and cursors, form values, safe links; an article cut into highlighted runs);
- `pages`: the request context handlers see, templates and their filters, flash messages;
- `security`: response headers, request limits, sessions, CSRF and origin checks, login;
- `queue`, `deals` and `reports`: the routes of the review queue, of the deal registry and of
  the reports (confirmed aggregate claims);
- `app`: the ReviewApp that takes a request to its handler, `create_app` and the server.

What the CLI, the tests and the benches use is re-exported here.
"""

from __future__ import annotations

from pipeline.review.views import DEFAULT_HOST, DEFAULT_PORT, review_ui_hint
from pipeline.review.web.app import (
    HTTP_ERRORS,
    LOOPBACK_NAMES,
    ReviewApp,
    ServeError,
    check_bind,
    create_app,
    is_loopback,
    run_server,
    running_server,
)
from pipeline.review.web.forms import (
    FORM_FIELDS,
    PAGE_SIZE,
    REASON_LABELS,
    changed_edits,
    format_cursor,
    local_path,
    parse_cursor,
    parse_queue_query,
    plain,
    queue_params,
    reason_label,
    safe_url,
    with_query,
)
from pipeline.review.web.highlight import ENTITY_CLASSES, Segment, article_segments, paragraphs
from pipeline.review.web.pages import STATIC_DIR, TEMPLATES_DIR, Ctx
from pipeline.review.web.security import (
    CSP,
    LOGIN_LIMIT,
    LOGIN_WINDOW,
    MAX_BODY_BYTES,
    MAX_FORM_FIELDS,
    MAX_LOGIN_BODY_BYTES,
    SECURITY_HEADERS,
    SESSION_TTL,
    SecurityHeaders,
)

__all__ = [
    "CSP", "DEFAULT_HOST", "DEFAULT_PORT", "ENTITY_CLASSES", "FORM_FIELDS", "HTTP_ERRORS",
    "LOGIN_LIMIT", "LOGIN_WINDOW", "LOOPBACK_NAMES", "MAX_BODY_BYTES", "MAX_FORM_FIELDS",
    "MAX_LOGIN_BODY_BYTES", "PAGE_SIZE", "REASON_LABELS", "SECURITY_HEADERS", "SESSION_TTL",
    "STATIC_DIR", "TEMPLATES_DIR", "Ctx", "ReviewApp", "SecurityHeaders", "Segment", "ServeError",
    "article_segments", "changed_edits", "check_bind", "create_app", "format_cursor",
    "is_loopback", "local_path", "paragraphs", "parse_cursor", "parse_queue_query", "plain",
    "queue_params", "reason_label", "review_ui_hint", "run_server", "running_server", "safe_url",
    "with_query",
]
