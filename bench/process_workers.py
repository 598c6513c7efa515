"""Processing workers' throughput on a real PostgreSQL: one worker, then two, over the same pages.

Usage: .venv/bin/python bench/process_workers.py [--stories 600] [--batch 64] [--model never]
                                                 [--rounds 1]

Starts a PostgreSQL as the tests do (tests/servers.py: initdb, fsync off), stores generated news
once (tests/scalefixtures.py: stories of one deal each, an edited copy of every fifth from
another outlet, a word-for-word copy of every seventh) into a template database, and for each
worker count copies it into a fresh database and starts that many worker processes. Each worker
loads its analyser, says it is ready, and waits; the clock starts when all are ready and stops
when the last has no page left. So the figure is processing alone, not Python's and spaCy's
start-up. Prints pages/s for each worker count and the ratio of two workers to one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from scalefixtures import store_pages, story_pages  # noqa: E402
from servers import PostgresDatabases, database_url, postgres_server  # noqa: E402

from pipeline.storage import Store  # noqa: E402

# One worker: load the analyser, say "ready", wait for a line on stdin, process until no page
# is left, then print the pages it processed, its CPU seconds, and the seconds it waited for the
# clustering lock (where workers take turns).
WORKER = """
import os, sys, time
from pipeline.config import load_config
from pipeline.jobs.analyzer import build_analyzer
from pipeline.jobs.process_worker import process_as_worker
from pipeline.storage import Store
config = load_config()
with Store(sys.argv[1]) as store:
    analyzer = build_analyzer(config, sys.argv[3], ranker=None)
    analyzer.analyze("warm up: Kenya signed a cloud contract with Huawei.", None)
    waited = 0.0
    lock = store.articles.lock_clustering
    def timed_lock():
        global waited
        began = time.perf_counter()
        lock()
        waited += time.perf_counter() - began
    store.articles.lock_clustering = timed_lock
    print("ready", flush=True)
    sys.stdin.readline()
    cpu = sum(os.times()[:2])
    done = process_as_worker(store, analyzer, batch_size=int(sys.argv[2]),
                             dedup=config.settings.dedup)
    print(done.pages, sum(os.times()[:2]) - cpu, waited, flush=True)
"""


def run_workers(url: str, workers: int, batch: int, model: str
                ) -> tuple[float, int, float, float]:
    """Seconds from "go" until the last worker is done, the pages they processed, and their
    CPU seconds and seconds waiting for the clustering lock, summed."""
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(batch), model], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(workers)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    began = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    pages, cpu, waited = 0, 0.0, 0.0
    for proc in procs:
        out, _ = proc.communicate()
        assert proc.returncode == 0
        done, used, wait = out.split()
        pages, cpu, waited = pages + int(done), cpu + float(used), waited + float(wait)
    return time.perf_counter() - began, pages, cpu, waited


def server_cpu(postmaster: int) -> float:
    """CPU seconds the PostgreSQL server has used: the postmaster, its live processes, and
    those that ended (counted into the postmaster once reaped)."""
    tick = os.sysconf("SC_CLK_TCK")

    def fields(pid: int) -> list[str]:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    own = fields(postmaster)  # after the comm: state, ppid, …; utime is the 12th
    total = sum(int(v) for v in own[11:15])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = fields(int(entry.name))
            except OSError:
                continue
            if int(stat[1]) == postmaster:
                total += int(stat[11]) + int(stat[12])
    return total / tick


def postmaster_of(url: str) -> int:
    with Store(url) as store:
        backend = int(store.database.execute("SELECT pg_backend_pid()").fetchone()[0])
    return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=600)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--model", default="never", choices=["never", "auto", "required"])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    pages = story_pages(args.stories, ("wire-a", "wire-b", "wire-c"), edited_every=5,
                        same_every=7)
    with postgres_server() as server:
        databases = PostgresDatabases(server)
        template = databases.new()
        with Store(template) as store:
            store_pages(store, pages)
        name = template.rsplit("/", 1)[1]
        postmaster = postmaster_of(template)
        rates: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.rounds):
            for workers in (1, 2):
                copy = f"{name}_w{workers}"
                with databases._admin() as conn:
                    conn.execute(f"CREATE DATABASE {copy} TEMPLATE {name}")
                url = database_url(server, copy)
                server_before = server_cpu(postmaster)
                seconds, done, cpu, waited = run_workers(url, workers, args.batch, args.model)
                server_used = server_cpu(postmaster) - server_before
                assert done == len(pages), (done, len(pages))
                rates[workers].append(done / seconds)
                print(f"{workers} worker(s): {done} pages in {seconds:.1f} s: "
                      f"{done / seconds:.1f} pages/s; CPU: workers {cpu:.1f} s, PostgreSQL "
                      f"{server_used:.1f} s; waiting for the clustering lock {waited:.2f} s; "
                      f"load average {os.getloadavg()[0]:.1f}",
                      flush=True)
                databases.drop(url)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"median of {args.rounds} round(s), {len(pages)} pages, batch {args.batch}, model "
          f"{args.model}: 1 worker {one:.1f} pages/s, 2 workers {two:.1f} pages/s, "
          f"ratio {two / one:.2f}")


if __name__ == "__main__":
    main()
