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
    server_cpu_ms: float = 0.0  # server CPU time (all its threads) per answered request
    load_1min: float = 0.0  # the machine's 1-minute load average when the step started
    replicas: int = 1  # server processes sharing the port (more than 1: Redis state)


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
    server: Server | None = None,
    replicas: int = 1,
) -> Outcome:
    """One open-loop run and its summary."""
    cpu_before = server.cpu_seconds() if server is not None else 0.0
    load = os.getloadavg()[0]
    latencies, statuses, elapsed_ms = asyncio.run(
        _open_loop(port, payloads, rate, seconds, n_connections)
    )
    cpu = (server.cpu_seconds() - cpu_before) if server is not None else 0.0
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
        server_cpu_ms=1000 * cpu / max(ok, 1),
        load_1min=load,
        replicas=replicas,
    )


# ------------------------------------------------------------------------------ data and runs
def build_runs(
    workdir: Path, n_events: int, models: list[str], n_items: int = 100_000
) -> dict[str, Path]:
    """A generated log over ``n_items`` items, ingested, prepared; one run per model (cached)."""
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events
    from shopseq.runs.nextitem import TrainConfig, load_split, train_next_item
    from shopseq.sequences.protocols import SplitConfig
    from shopseq.store import open_store
    from shopseq.synthetic import GeneratorConfig, generate_events, write_events

    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / "shop.duckdb"
    if not store.exists():
        config = GeneratorConfig(n_events=n_events, n_items=n_items, n_users=n_events // 20, seed=0)
        log = workdir / "events.csv.zst"
        print(f"generating {n_events:,} events over {n_items:,} items", flush=True)
        write_events(generate_events(config), log, config)
        with open_store(store, threads=2) as opened:
            ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), opened)
            prepare_events(opened, PrepareConfig())
    params = {
        "sknn": {},
        "gru4rec": {"n_epochs": 1},
        "sasrec": {"n_epochs": 1, "loss": "sampled_ce", "n_negatives": 256},
    }
    # Latency depends on the catalogue and the model's size, not on its weights: the neural
    # models are fitted for one epoch on 3,000 training sequences, and every run ranks 500 test
    # cases at training, over the whole vocabulary either way (see _small).
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
            train_next_item(config, _small(split, neural=model != "sknn"))
            print(f"trained {model} in {time.perf_counter() - started:.0f}s", flush=True)
        runs[model] = out
    return runs


def _small(split: Any, *, neural: bool) -> Any:
    """The split with 500 test cases (and 3,000 training sequences for a neural model).

    The vocabulary, the owners and their served histories stay whole: the run scores the full
    catalogue for every user, as the service does; only what training costs shrinks.
    """
    import dataclasses

    test = split.test.subset(np.arange(min(500, len(split.test))))
    train = split.train.subset(np.arange(min(3000, len(split.train)))) if neural else split.train
    return dataclasses.replace(split, train=train, test=test)


# ---------------------------------------------------------------------------------- the server
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``shopseq serve`` as child processes: one, or ``replicas`` sharing the port and a state.

    Replicas bind one port with ``SO_REUSEPORT`` (the kernel spreads connections over them), keep
    each user's live events in one Redis (``redis``) and write one event log each, which is
    how docs/serve.md scales the service out past one process.
    """

    def __init__(
        self,
        run: Path,
        workdir: Path,
        key_file: Path,
        *extra: str,
        replicas: int = 1,
        redis: Redis | None = None,
    ) -> None:
        if replicas > 1 and redis is None:
            raise ValueError("replicas share their live state through Redis: give redis")
        self.port = _free_port()
        self.redis = redis
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        shared = ["--reuse-port", "--state", redis.url] if replicas > 1 and redis else []
        self.processes = [self._start(run, workdir, key_file, n, env, [*shared, *extra])
                          for n in range(replicas)]  # fmt: skip
        import httpx

        # Each replica logs its start; wait until all are up (readyz is answered by any one).
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1)
                if ready.status_code == 200 and self._all_listening():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("the server did not become ready; see server.log")

    def _start(
        self, run: Path, workdir: Path, key_file: Path, n: int, env: dict[str, str],
        extra: list[str],
    ) -> subprocess.Popen[bytes]:  # fmt: skip
        log = workdir / f"bench-{self.port}-{n}.sqlite"
        return subprocess.Popen(
            [sys.executable, "-m", "shopseq", "serve", "--run", str(run), "--port", str(self.port),
             "--log", str(log), "--keys", str(key_file), "--no-access-log", *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=(workdir / "server.log").open("ab"),
        )  # fmt: skip

    def _all_listening(self) -> bool:
        """Every replica holds a listening socket on the port (Linux /proc)."""
        if len(self.processes) == 1:
            return True
        inodes = _listening_inodes(self.port)
        for process in self.processes:
            fds = Path(f"/proc/{process.pid}/fd")
            held = {os.readlink(fd) for fd in fds.iterdir() if fd.is_symlink()}
            if not any(f"socket:[{inode}]" in held for inode in inodes):
                return False
        return True

    def cpu_seconds(self) -> float:
        """User + system CPU time of every server process and of Redis (Linux /proc)."""
        own = sum(_cpu_seconds(p.pid) for p in self.processes)
        return own + (self.redis.cpu_seconds() if self.redis is not None else 0.0)

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(fields[9])
    return inodes


class Redis:
    """A private ``redis-server`` on 127.0.0.1 (no persistence) for the replicas' shared state."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


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
        f"| what | server processes | offered {unit}/s | achieved {unit}/s | p50 ms | p95 ms | "
        "p99 ms | max ms | not answered | server CPU ms per request | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per = max(r.events_per_request, 1)
        lines.append(
            f"| {r.name} | {_processes(r.replicas)} | {r.rate * per:,.0f} | "
            f"{r.achieved_per_s * per:,.0f} | {r.p50_ms:.2f} | {r.p95_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.max_ms:.1f} | {r.errors} | "
            f"{r.server_cpu_ms:.2f} | {r.load_1min:.1f} |"
        )
    return lines


def _processes(replicas: int) -> str:
    return "1" if replicas == 1 else f"{replicas} + Redis"


def _goal(rows: list[Outcome], name: str, rate: float, p99_ms: float) -> str:
    """Whether a latency goal held in this run, and what the server's CPU time says."""
    row = next((r for r in rows if r.name == name and r.rate == rate), None)
    if row is None:
        return f"{name} at {rate:,.0f} req/s: not measured in this run"
    name = f"{name} ({_processes(row.replicas)} server processes)"
    met = row.p99_ms < p99_ms and row.errors == 0
    capacity = 1000 / row.server_cpu_ms if row.server_cpu_ms else float("nan")
    return (
        f"{name} at {rate:,.0f} req/s, p99 < {p99_ms:g} ms: **{'met' if met else 'not met'}** "
        f"(p99 {row.p99_ms:,.1f} ms, {row.errors} not answered, load {row.load_1min:.1f}; "
        f"{row.server_cpu_ms:.2f} ms server CPU per request = {capacity:,.0f} req/s per free "
        f"core, {capacity / rate:.2f}x the goal's rate)"
    )


def _posting_goal(rows: list[Outcome], per_request: int, events_per_s: float) -> str:
    """Whether some step acknowledged ``events_per_s`` (all answered) in this run."""
    steps = [r for r in rows if max(r.events_per_request, 1) == per_request]
    best = max(steps, key=lambda r: r.achieved_per_s, default=None)
    if best is None:
        return f"{per_request}-event requests: not measured in this run"
    per = max(best.events_per_request, 1)
    where = f" ({_processes(best.replicas)} server processes)"
    met = any(r.achieved_per_s * per >= events_per_s and r.errors == 0 for r in steps)
    clean = max((r for r in steps if r.errors == 0), key=lambda r: r.achieved_per_s, default=None)
    capacity = 1000 / best.server_cpu_ms * per if best.server_cpu_ms else float("nan")
    every = f"{clean.achieved_per_s * per:,.0f} events/s" if clean else "none"
    return (
        f"{'single events' if per == 1 else f'batches of {per}'}{where}, >= {events_per_s:,.0f} "
        "events/s "
        f"acknowledged with every request answered: **{'met' if met else 'not met'}** (best step "
        f"with every request answered: {every}; best step: {best.achieved_per_s * per:,.0f} "
        f"events/s with {best.errors} not answered, load {best.load_1min:.1f}; "
        f"{best.server_cpu_ms:.2f} ms server CPU per request = {capacity:,.0f} events/s per free "
        "core)"
    )


def _goals(recs: list[Outcome], events: list[Outcome], replicas: int) -> list[str]:
    recs = [r for r in recs if r.replicas == replicas]
    events = [r for r in events if r.replicas == replicas]
    return [
        f"* {_goal(recs, 'sknn, recommendations', 500, 10)}",
        f"* {_goal(recs, 'sasrec, recommendations', 200, 25)}",
        f"* {_posting_goal(events, 100, 5000)}",
        f"* {_posting_goal(events, 1, 1000)}",
    ]


def write_doc(results: dict[str, Any]) -> None:
    """Replace the ``serve`` section of docs/BENCHMARKS.md."""
    recs = [Outcome(**r) for r in results["recommendations"]]
    events = [Outcome(**r) for r in results["events"]]
    body = [
        SECTION,
        "",
        "`shopseq serve` processes of one worker each (`OPENBLAS_NUM_THREADS=1`, one torch "
        "thread): one with the in-memory live state, or several sharing the port "
        "(`--reuse-port`) and one Redis for the live state, each with its own event log (their "
        "CPU includes Redis's); the open-loop load generator runs in another process on the same "
        "2 cores. Requests arrive at "
        "a fixed rate and latency counts from each request's scheduled time, queueing included. "
        f"Catalogue: {results['n_items']:,} items in the run's vocabulary; "
        f"{results['n_events']:,} generated events. Load average before the run (other processes "
        f"on the machine): {results['load_before']}. *Not answered*: requests still unsent 5 s "
        "after their scheduled time (dropped and counted) or failed. *Server CPU ms per request*: "
        "CPU time of the server process (all threads) per answered request, which the machine's "
        "other load changes much less than latency: 1,000 / it is the rate one free core would "
        "sustain.",
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
        "Goals (issue 11), as this run found them, for each number of server processes:",
        "",
        *[
            line
            for n in sorted({r.replicas for r in recs + events})
            for line in _goals(recs, events, n)
        ],
        "",
        "Reference points: Serenade p90 < 7 ms end to end at 1,000 predictions/s on 2 vCPU; "
        "Metarank 1,000-3,000 events/s import.",
        "",
        machine_line(threads=1),
    ]
    write_section("serve", "\n".join(body))


def _model_steps(
    model: str,
    run: Path,
    server: Server,
    key: str,
    args: argparse.Namespace,
    seconds: float,
    replicas: int,
) -> tuple[list[Outcome], list[Outcome]]:
    """Every load step of one model's server: recommendations, and posting for sknn."""
    rates = {"sknn": [250, 500, 1000], "gru4rec": [100, 200, 400], "sasrec": [100, 200, 400]}
    recommendations: list[Outcome] = []
    events: list[Outcome] = []
    payloads = _recommend_payloads(run, key, 5000)
    run_load("warm-up", server.port, payloads, 100, 2)
    if model == args.models[0]:
        floor = [_http("GET", "/healthz", key)]
        out = run_load(
            "healthz (HTTP floor)", server.port, floor, 1000, seconds, server=server,
            replicas=replicas,
        )  # fmt: skip
        print(out, flush=True)
        recommendations.append(out)
    for rate in rates[model][:2] if args.quick else rates[model]:
        out = run_load(
            f"{model}, recommendations", server.port, payloads, rate, seconds,
            server=server, replicas=replicas,
        )  # fmt: skip
        print(out, flush=True)
        recommendations.append(out)
    if model == "sknn":
        for per_request, rate_list in ((1, [500, 1000, 1500]), (100, [50, 100, 200])):
            bodies = _event_payloads(run, key, 2000, per_request)
            for rate in rate_list[:2] if args.quick else rate_list:
                label = "single events" if per_request == 1 else "batches of 100"
                out = run_load(
                    label, server.port, bodies, rate, seconds,
                    events_per_request=per_request, server=server, replicas=replicas,
                )  # fmt: skip
                print(out, flush=True)
                events.append(out)
    return recommendations, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/shopseq-serve-bench"))
    parser.add_argument("--events", type=int, default=2_000_000, help="Generated events.")
    parser.add_argument("--models", nargs="+", default=["sknn", "gru4rec", "sasrec"])
    parser.add_argument(
        "--items",
        type=int,
        default=100_000,
        help="Generated catalogue (items never seen in "
        "training are not in the run's vocabulary; the report gives the vocabulary size).",
    )
    parser.add_argument("--build-only", action="store_true", help="Build the runs and stop.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Seconds per load step.")
    parser.add_argument("--quick", action="store_true", help="Short steps, fewer rates.")
    parser.add_argument("--no-doc", action="store_true", help="Do not rewrite docs/BENCHMARKS.md.")
    parser.add_argument(
        "--replicas",
        nargs="+",
        type=int,
        default=[1],
        help="Server processes to measure, in turn (more than 1: they share the port and a "
        "private redis-server for the live state).",
    )
    args = parser.parse_args()
    seconds = 5.0 if args.quick else args.seconds
    runs = build_runs(args.workdir, args.events, args.models, args.items)
    if args.build_only:
        return
    load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    key_file = args.workdir / "keys.json"
    key_file.unlink(missing_ok=True)
    from shopseq.serve.keys import KeyStore

    key, _ = KeyStore(key_file).add("benchmark", "client")
    recommendations: list[Outcome] = []
    events: list[Outcome] = []
    for replicas in args.replicas:
        redis = Redis() if replicas > 1 else None
        try:
            for model, run in runs.items():
                server = Server(run, args.workdir, key_file, replicas=replicas, redis=redis)
                try:
                    recs, posted = _model_steps(model, run, server, key, args, seconds, replicas)
                finally:
                    server.stop()
                recommendations += recs
                events += posted
        finally:
            if redis is not None:
                redis.stop()
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
