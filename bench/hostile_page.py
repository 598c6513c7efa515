"""Time and peak memory of one hostile page: deal sentences padded with zero-width characters.

Usage: .venv/bin/python bench/hostile_page.py [--mb 3.5] [--model auto|never|required]
                                             [--limit-gb N] [--skip analyze,process]

Writes a page of about --mb megabytes: "Kenya's ICT ministry signed a cloud deal with Huawei."
repeated, each sentence followed by a run of zero-width characters (U+200B, U+200C, U+200D,
U+2060, U+FEFF), as text for `dealwatch analyze` and as the body of one stored HTML page for
`dealwatch process`, alone in its batch. Each command runs in its own child process; the script
prints its exit code, wall time, peak resident memory (the child's ru_maxrss) and the page's
verdict as stored. --limit-gb caps each child's address space (RLIMIT_AS), as a container's
memory limit would. The issue (#12) measured 30 s and 3.8 GB for `process` before the fix.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from models.records import Page
from pipeline.storage import Store

SENTENCE = "Kenya's ICT ministry signed a cloud deal with Huawei."
PADDING = "\u200b\u200c\u200d\u2060\ufeff" * 4


def hostile_text(megabytes: float) -> str:
    unit = SENTENCE + PADDING + " "
    size = len(unit.encode("utf-8"))
    return unit * max(1, int(megabytes * 1_000_000 / size))


def run_child(args: list[str], limit_gb: float | None, out: Path, timeout: float
              ) -> tuple[int | str, float, float, str]:
    """(exit code, seconds, peak MB, last line of stderr) of one command in a fresh process;
    a command still running after `timeout` seconds is stopped (exit "stopped")."""
    def limit() -> None:
        if limit_gb:
            cap = int(limit_gb * 1024 ** 3)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    started = time.perf_counter()
    with out.open("wb") as stdout, (out.parent / (out.name + ".err")).open("wb") as stderr:
        proc = subprocess.Popen(args, stdout=stdout, stderr=stderr, preexec_fn=limit)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        stopped = not timer.is_alive()
        timer.cancel()
    elapsed = time.perf_counter() - started
    code: int | str = f"stopped after {timeout:.0f} s" if stopped else os.waitstatus_to_exitcode(status)
    lines = (out.parent / (out.name + ".err")).read_text(errors="replace").strip().splitlines()
    return code, elapsed, usage.ru_maxrss / 1024, lines[-1][:160] if lines else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=3.5)
    parser.add_argument("--model", default="auto", choices=["auto", "never", "required"])
    parser.add_argument("--limit-gb", type=float, default=None)
    parser.add_argument("--timeout", type=float, default=600,
                        help="stop a command after this many seconds")
    parser.add_argument("--skip", default="", help="comma-separated: analyze, process")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    skip = set(filter(None, args.skip.split(",")))
    dealwatch = str(Path(sys.executable).with_name("dealwatch"))
    text = hostile_text(args.mb)
    print(f"page: {len(text.encode('utf-8')) / 1e6:.2f} MB UTF-8, {len(text):,} characters, "
          f"{text.count(SENTENCE):,} sentences; model: {args.model}; "
          f"memory limit: {f'{args.limit_gb} GB' if args.limit_gb else 'none'}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        page = folder / "page.txt"
        page.write_text(text, encoding="utf-8")
        if "analyze" not in skip:
            code, secs, peak, last = run_child(
                [dealwatch, "analyze", "--model", args.model, str(page)], args.limit_gb,
                folder / "analyze.out", args.timeout)
            out = (folder / "analyze.out").read_text(encoding="utf-8", errors="replace")
            found = out.count('"kind": "deal"')
            print(f"analyze: exit {code}, {secs:.1f} s, peak {peak:,.0f} MB, {found} candidates"
                  + (f"; stderr: {last}" if last else ""))
        if "process" not in skip:
            db = folder / "dealwatch.db"
            html = f"<html><body><article><h1>Hostile</h1><p>{text}</p></article></body></html>"
            with Store(db) as store:
                store.pages.save_page(Page(url="https://bench.test/hostile.html", source_id=None,
                                     status=200, body=html.encode(),
                                     headers={"content-type": "text/html"}))
            env_args = [dealwatch, "--db", str(db), "process", "--model", args.model]
            code, secs, peak, last = run_child(env_args, args.limit_gb, folder / "process.out",
                                              args.timeout)
            with Store(db) as store:
                row = store.db.execute(
                    "SELECT process_status, process_reason FROM pages").fetchone()
                again = run_child(env_args, args.limit_gb, folder / "again.out", args.timeout)
            print(f"process: exit {code}, {secs:.1f} s, peak {peak:,.0f} MB, page: {row[0]}"
                  + (f" ({row[1]})" if row[1] else "") + (f"; stderr: {last}" if last else ""))
            print(f"process again: exit {again[0]}, {again[1]:.1f} s"
                  + (f"; stderr: {again[3]}" if again[3] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
