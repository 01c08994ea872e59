"""Service latency and throughput, open loop: requests arrive at a fixed rate, answered or not.

What it measures (all traffic to 127.0.0.1, every run bounded in requests and seconds):

* recommendations (``GET /v1/users/{id}/recommendations?k=10``) for sknn, GRU4Rec and SASRec runs
  over a 100 k-item catalogue, at fixed arrival rates; users are a mix of users the run knows and
  new ones, a share of whom have posted live events;
* event posting (``POST /v1/events``): single events and batches of 100 at fixed rates, each
  acknowledged only after its group's fsync (``synchronous=FULL``).

Latency is taken from each request's *scheduled* send time to its last response byte, so a server
that falls behind is charged for the queue it builds (no coordinated omission). The client is a
minimal asyncio HTTP/1.1 keep-alive client (a generic client costs more CPU per request than the
server on these 2 cores and would measure itself). The server runs in its own process
(``shopseq serve``, one worker, ``OPENBLAS_NUM_THREADS=1``, one torch thread).

Example (writes benchmarks/results/serve.json and the docs/BENCHMARKS.md section)::

    .venv/bin/python benchmarks/serve.py --workdir /tmp/serve-bench
    .venv/bin/python benchmarks/serve.py --workdir /tmp/serve-bench --quick   # a 2-minute check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from markdown_report import machine_line, write_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "serve.json"
SECTION = "## Service (shopseq serve)"


# --------------------------------------------------------------------------- the load generator
@dataclass
class Outcome:
    """One open-loop run."""

    name: str
    rate: float
    seconds: float
    sent: int
    ok: int
    errors: int
    statuses: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    achieved_per_s: float
    events_per_request: int = 0


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, payload: bytes) -> int:
        self.writer.write(payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


def _http(method: str, path: str, key: str, body: bytes | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"X-API-Key: {key}"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def _open_loop(
    port: int, payloads: list[bytes], rate: float, seconds: float, n_connections: int
) -> tuple[list[float], dict[str, int], int]:
    """Send ``rate`` requests per second for ``seconds``, cycling through ``payloads``."""
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(n_connections):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pool.put_nowait(_Connection(reader, writer))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    n = int(rate * seconds)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(i: int, scheduled: float) -> None:
        try:
            # A request still unsent after 5 s is dropped and counted: an overloaded server then
            # costs each step at most a few seconds more instead of draining a long queue.
            connection = await asyncio.wait_for(pool.get(), max(0.0, scheduled + 5 - loop.time()))
        except TimeoutError:
            statuses["dropped"] = statuses.get("dropped", 0) + 1
            latencies.append(loop.time() - scheduled)
            return
        try:
            status = await asyncio.wait_for(connection.request(payloads[i % len(payloads)]), 30)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            status = 0
            connection.writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            connection = _Connection(reader, writer)
        latencies.append(loop.time() - scheduled)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        pool.put_nowait(connection)

    tasks = []
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 120)
    elapsed = loop.time() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    return latencies, statuses, int(elapsed * 1000)


def run_load(
    name: str,
    port: int,
    payloads: list[bytes],
    rate: float,
    seconds: float,
    *,
    n_connections: int = 64,
    events_per_request: int = 0,
) -> Outcome:
    """One open-loop run and its summary."""
    latencies, statuses, elapsed_ms = asyncio.run(
        _open_loop(port, payloads, rate, seconds, n_connections)
    )
    ms = np.array(latencies) * 1000
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    return Outcome(
        name=name,
        rate=rate,
        seconds=seconds,
        sent=len(latencies),
        ok=ok,
        errors=len(latencies) - ok,
        statuses=statuses,
        p50_ms=float(np.percentile(ms, 50)),
        p95_ms=float(np.percentile(ms, 95)),
        p99_ms=float(np.percentile(ms, 99)),
        max_ms=float(ms.max()),
        achieved_per_s=ok / (elapsed_ms / 1000),
        events_per_request=events_per_request,
    )


# ------------------------------------------------------------------------------ data and runs
def build_runs(workdir: Path, n_events: int, models: list[str]) -> dict[str, Path]:
    """A generated log over 100 k items, ingested, prepared; one run per model (cached)."""
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events
    from shopseq.runs.nextitem import TrainConfig, load_split, train_next_item
    from shopseq.sequences.protocols import SplitConfig
    from shopseq.store import open_store
    from shopseq.synthetic import GeneratorConfig, generate_events, write_events

    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / "shop.duckdb"
    if not store.exists():
        config = GeneratorConfig(n_events=n_events, n_items=100_000, n_users=n_events // 20, seed=0)
        log = workdir / "events.csv.zst"
        print(f"generating {n_events:,} events over 100,000 items", flush=True)
        write_events(generate_events(config), log, config)
        with open_store(store, threads=2) as opened:
            ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), opened)
            prepare_events(opened, PrepareConfig())
    params = {
        "sknn": {},
        "gru4rec": {"n_epochs": 1},
        "sasrec": {"n_epochs": 1, "loss": "sampled_ce", "n_negatives": 256},
    }
    # Latency depends on the catalogue and the model's size, not on its weights: one epoch, no
    # validation, and 1 % of events as test cases keep training (which ranks every test case over
    # the whole catalogue) to minutes.
    split_config = SplitConfig(test_fraction=0.01, valid_fraction=0.0)
    runs = {}
    split = None
    for model in models:
        out = workdir / "runs" / model
        if not (out / "manifest.json").is_file():
            if split is None:
                split = load_split(store, split_config, threads=2)
                print(f"split: {split.item_vocab.size - 1:,} items in the vocabulary", flush=True)
            print(f"training {model}", flush=True)
            started = time.perf_counter()
            config = TrainConfig(model=model, params=params[model], split=split_config, out=out)
            train_next_item(config, split)
            print(f"trained {model} in {time.perf_counter() - started:.0f}s", flush=True)
        runs[model] = out
    return runs


# ---------------------------------------------------------------------------------- the server
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``shopseq serve`` as a child process."""

    def __init__(self, run: Path, workdir: Path, key_file: Path, *extra: str) -> None:
        self.port = _free_port()
        log = workdir / f"bench-{self.port}.sqlite"
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shopseq", "serve", "--run", str(run), "--port", str(self.port),
             "--log", str(log), "--keys", str(key_file), "--no-access-log", *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=(workdir / "server.log").open("ab"),
        )  # fmt: skip
        import httpx

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("the server did not become ready; see server.log")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _recommend_payloads(run: Path, key: str, n: int) -> list[bytes]:
    from shopseq.sequences import Vocabulary

    owners = Vocabulary.load("user", run / "vocab" / "owners.parquet").ids.to_pylist()
    rng = random.Random(0)
    users = [rng.choice(owners) if rng.random() < 0.8 else f"new-{k}" for k in range(n)]
    return [_http("GET", f"/v1/users/{u}/recommendations?k=10", key) for u in users]


def _event_payloads(run: Path, key: str, n: int, per_request: int) -> list[bytes]:
    from shopseq.sequences import Vocabulary

    items = Vocabulary.load("item", run / "vocab" / "items.parquet").ids.to_pylist()
    rng = random.Random(1)
    out = []
    for k in range(n):
        events = [
            {"user_id": f"live-{rng.randrange(5000)}", "item_id": rng.choice(items),
             "action": "view"}
            for _ in range(per_request)
        ]  # fmt: skip
        body = json.dumps(events[0] if per_request == 1 else {"events": events}).encode()
        out.append(_http("POST", "/v1/events", key, body))
        del k
    return out


# -------------------------------------------------------------------------------------- report
def _table(rows: list[Outcome], unit: str) -> list[str]:
    lines = [
        f"| what | offered {unit}/s | achieved {unit}/s | p50 ms | p95 ms | p99 ms | max ms | "
        "non-2xx |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per = max(r.events_per_request, 1)
        lines.append(
            f"| {r.name} | {r.rate * per:,.0f} | {r.achieved_per_s * per:,.0f} | {r.p50_ms:.2f} | "
            f"{r.p95_ms:.2f} | {r.p99_ms:.2f} | {r.max_ms:.1f} | {r.errors} |"
        )
    return lines


def write_doc(results: dict[str, Any]) -> None:
    """Replace the ``serve`` section of docs/BENCHMARKS.md."""
    recs = [Outcome(**r) for r in results["recommendations"]]
    events = [Outcome(**r) for r in results["events"]]
    body = [
        SECTION,
        "",
        "One `shopseq serve` process (one worker, `OPENBLAS_NUM_THREADS=1`, one torch thread); the "
        "open-loop load generator runs in another process on the same 2 cores. Requests arrive at "
        "a fixed rate and latency counts from each request's scheduled time, queueing included. "
        f"Catalogue: {results['n_items']:,} items in the run's vocabulary; "
        f"{results['n_events']:,} generated events. Load average before the run (other processes "
        f"on the machine): {results['load_before']}.",
        "",
        "Recommendations (`GET /v1/users/{id}/recommendations?k=10`; 80 % users the run knows, "
        "20 % new ones); `healthz` is the HTTP floor (no work):",
        "",
        *_table(recs, "req"),
        "",
        "Event posting (`POST /v1/events`), each answer sent after its group's fsync "
        "(`synchronous=FULL`):",
        "",
        *_table(events, "events"),
        "",
        "Goals (issue 11): sknn p99 < 10 ms at 500 req/s; SASRec p99 < 25 ms at 200 req/s; "
        ">= 5,000 events/s acknowledged (batches); >= 1,000 single-event requests/s. Reference "
        "points: Serenade p90 < 7 ms end to end at 1,000 predictions/s on 2 vCPU; Metarank "
        "1,000-3,000 events/s import.",
        "",
        machine_line(threads=1),
    ]
    write_section("serve", "\n".join(body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/shopseq-serve-bench"))
    parser.add_argument("--events", type=int, default=2_000_000, help="Generated events.")
    parser.add_argument("--models", nargs="+", default=["sknn", "gru4rec", "sasrec"])
    parser.add_argument("--seconds", type=float, default=10.0, help="Seconds per load step.")
    parser.add_argument("--quick", action="store_true", help="Short steps, fewer rates.")
    parser.add_argument("--no-doc", action="store_true", help="Do not rewrite docs/BENCHMARKS.md.")
    args = parser.parse_args()
    seconds = 5.0 if args.quick else args.seconds
    runs = build_runs(args.workdir, args.events, args.models)
    load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    key_file = args.workdir / "keys.json"
    key_file.unlink(missing_ok=True)
    from shopseq.serve.keys import KeyStore

    key, _ = KeyStore(key_file).add("benchmark", "client")
    rates = {"sknn": [250, 500, 1000], "gru4rec": [100, 200, 400], "sasrec": [100, 200, 400]}
    recommendations: list[Outcome] = []
    events: list[Outcome] = []
    for model, run in runs.items():
        server = Server(run, args.workdir, key_file)
        try:
            payloads = _recommend_payloads(run, key, 5000)
            run_load("warm-up", server.port, payloads, 100, 2)
            if model == args.models[0]:
                floor = [_http("GET", "/healthz", key)]
                out = run_load("healthz (HTTP floor)", server.port, floor, 1000, seconds)
                print(out, flush=True)
                recommendations.append(out)
            for rate in rates[model][:2] if args.quick else rates[model]:
                out = run_load(f"{model}, recommendations", server.port, payloads, rate, seconds)
                print(out, flush=True)
                recommendations.append(out)
            if model == "sknn":
                for per_request, rate_list in ((1, [500, 1000, 1500]), (100, [50, 100, 200])):
                    bodies = _event_payloads(run, key, 2000, per_request)
                    for rate in rate_list[:2] if args.quick else rate_list:
                        label = "single events" if per_request == 1 else "batches of 100"
                        out = run_load(
                            label, server.port, bodies, rate, seconds,
                            events_per_request=per_request,
                        )  # fmt: skip
                        print(out, flush=True)
                        events.append(out)
        finally:
            server.stop()
    from shopseq.sequences import Vocabulary

    n_items = Vocabulary.load("item", next(iter(runs.values())) / "vocab" / "items.parquet").size
    results: dict[str, Any] = {
        "load_before": load_before,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "when": time.strftime("%Y-%m-%d", time.gmtime()),
        "n_events": args.events,
        "n_items": n_items - 1,
        "recommendations": [r.__dict__ for r in recommendations],
        "events": [r.__dict__ for r in events],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_doc:
        write_doc(results)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
