"""`shopseq demo`: the main job end to end on generated data, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shopseq.evaluate.backtest import BacktestConfig
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig
from shopseq.plan import PlanConfig
from shopseq.prepare import PrepareConfig
from shopseq.prepare.profile import profile_store
from shopseq.report import ReportConfig
from shopseq.sequences.protocols import SplitConfig
from shopseq.sequences.series import Metric, SeriesConfig
from shopseq.store import open_store
from shopseq.synthetic import GeneratorConfig

from .evaluate import run_evaluate
from .forecast import FAST_MODELS, NO_REFIT, run_forecast, show_leaderboard
from .generate import run_generate
from .ingest import run_ingest
from .options import ThreadsOption, console
from .plan import run_plan, show_plan
from .prepare import run_prepare
from .render import show_profile
from .report import run_report
from .train import load_split

__all__ = ["demo"]


def demo(
    workdir: Annotated[Path, typer.Option(help="Directory for the log, store and outputs.")] = Path(
        "shopseq-demo"
    ),
    events: Annotated[int, typer.Option("--events", "-n", help="Events to generate.")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    threads: ThreadsOption = None,
) -> None:
    """Generate a shop log; ingest, prepare, profile; rank models; forecast, plan; report."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "events.csv.zst"
    store_path = workdir / "shopseq.duckdb"
    if store_path.exists():
        store_path.unlink()  # the demo always starts from an empty store
    console.rule("[bold]1. generate")
    config = GeneratorConfig(
        n_events=events, seed=seed, dirty_fraction=0.001, duplicate_fraction=0.002
    )
    run_generate(config, log)
    console.rule("[bold]2. ingest")
    run_ingest([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store_path, threads)
    console.rule("[bold]3. prepare")
    run_prepare(PrepareConfig(), store_path, threads)
    console.rule("[bold]4. stats")
    with open_store(store_path, read_only=True, threads=threads) as store:
        show_profile(console, profile_store(store))
    console.rule("[bold]5. next-item models: train + evaluate")
    split = load_split(store_path, SplitConfig(), threads)
    run_evaluate(
        ["sasrec"],
        split,
        dataset="demo (generated)",
        exclude_seen=False,
        epochs=None,
        threads=None,
        seed=seed,
        out=workdir,  # leaderboard.json beside the store: the report picks it up
        # A short neural fit keeps the demo to seconds; real runs use the defaults.
        params={
            "sasrec": {
                "loss": "sampled_ce",
                "n_negatives": 256,
                "max_len": 20,
                "hidden_size": 32,
                "batch_size": 256,
                "n_epochs": 1,
                "progress": False,
            }
        },
        max_cases=5000,
    )
    console.rule("[bold]6. forecast")
    # Few series and fast models keep this step to seconds: daily purchases, top 4 categories.
    run = run_forecast(
        store_path,
        SeriesConfig(metric=Metric.PURCHASES, top_categories=4),
        BacktestConfig(horizon=14, n_folds=3, no_refit=NO_REFIT),
        FAST_MODELS,
        reconcile="mint_shrink",
        out_dir=workdir,
        threads=threads or 1,
    )
    show_leaderboard(console, run)
    console.rule("[bold]7. plan")
    show_plan(
        console,
        run_plan(
            store_path,
            PlanConfig(budget=10_000.0, lead_periods=1),
            horizon=14,
            top_categories=4,
            out_dir=workdir,
            threads=threads or 1,
        ),
    )
    console.rule("[bold]8. report")
    report_path = workdir / "report.html"
    run_report(store_path, report_path, ReportConfig(artifact_dirs=(workdir,)), threads)
    console.print(
        f"\nstore: {store_path}   (try: shopseq stats --store {store_path}; "
        f"shopseq train -m sknn --store {store_path})"
    )
    console.print(f"open the report: {report_path.resolve()}", highlight=False, soft_wrap=True)
