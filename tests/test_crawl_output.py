"""What the crawl subprocess writes can be anything: the run reads it without hanging or dying."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.ingest.crawl import _communicate
from scrapers.progress import SourceProgress

REPORT = '{"sources": {}}'


def _child(code: str, errors: str = "replace") -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, encoding="utf-8", errors=errors)


NOT_UTF8 = ("import sys; sys.stdout.buffer.write(b'\\xff stray\\n'); "
            "sys.stderr.buffer.write(b'\\xfe\\n'); print(" + repr(REPORT) + ")")


def test_bytes_that_are_not_utf8_do_not_stop_the_reading() -> None:
    with _child(NOT_UTF8) as proc:  # as run_crawl opens the crawl's pipes
        out, err = _communicate(proc, timeout=60, on_progress=None)
    assert out.splitlines()[-1] == REPORT
    assert "\ufffd" in err


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_reader_that_dies_still_ends_the_wait() -> None:
    """Strict decoding kills the stdout reader at the first bad byte: the run still ends (with
    the output it had), long before the timeout, instead of waiting for a line forever."""
    with _child(NOT_UTF8, errors="strict") as proc:
        _communicate(proc, timeout=60, on_progress=None)


def test_a_crawl_that_writes_a_lot_to_stderr_keeps_only_its_end() -> None:
    code = "import sys\nfor i in range(50000): print(i, file=sys.stderr)\nprint(" + repr(REPORT) + ")"
    with _child(code) as proc:
        _, err = _communicate(proc, timeout=60, on_progress=None)
    assert err.splitlines()[-1] == "49999" and len(err.splitlines()) < 1000


@pytest.mark.parametrize("line", [
    '{"progress": {"source": "a", "requests": "12"}}',
    '{"progress": {"source": "a", "requests": true}}',
    '{"progress": {"source": "a", "seconds_left": NaN}}',
    '{"progress": {"source": "a", "requests": [1]}}',
    '{"progress": {"source": "a", "requests": ' + "9" * 5000 + "}}",
    '{"progress": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"progress": {"source": 7}}',
])
def test_a_malformed_progress_line_is_no_progress(line: str) -> None:
    assert SourceProgress.from_line(line) is None


def test_a_progress_line_reads_back_as_written() -> None:
    sent = SourceProgress("wire", requests=12, articles=8, requests_left=88, seconds_left=70.0,
                          finished=True, finish_reason="finished")
    assert SourceProgress.from_line(sent.to_line()) == sent
