"""`shopseq demo`: the main job end to end on generated data, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .options import ThreadsOption, console

__all__ = ["demo"]


def demo(
    workdir: Annotated[Path, typer.Option(help="Directory for the log, store and outputs.")] = Path(
        "shopseq-demo"
    ),
    events: Annotated[int, typer.Option("--events", "-n", help="Events to generate.")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    threads: ThreadsOption = None,
) -> None:
    """Generate a shop log; ingest, prepare, profile; rank; forecast, plan; churn, CLV; report."""
    from shopseq.forecast.backtest import BacktestConfig
    from shopseq.forecast.series import Metric, SeriesConfig
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig
    from shopseq.nextitem.evaluation import RankingConfig
    from shopseq.plan import PlanConfig
    from shopseq.prepare import PrepareConfig
    from shopseq.prepare.profile import profile_store
    from shopseq.report import ReportConfig
    from shopseq.runs.catalogue import FAST_FORECASTERS, NO_REFIT
    from shopseq.runs.forecast import ForecastJobConfig, PlanJobConfig, run_forecast, run_plan
    from shopseq.runs.nextitem import EvaluateConfig, evaluate_next_item, load_split
    from shopseq.runs.predict import PredictConfig, predict_users
    from shopseq.sequences.protocols import SplitConfig
    from shopseq.store import open_store
    from shopseq.synthetic import GeneratorConfig
    from shopseq.users.evaluation import EvaluationConfig

    from .forecast import show_leaderboard as show_forecast_leaderboard
    from .generate import run_generate
    from .ingest import run_ingest
    from .plan import show_plan
    from .predict import show_prediction
    from .prepare import run_prepare
    from .render import show_leaderboard, show_profile
    from .report import run_report

    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "events.csv.zst"
    store_path = workdir / "shopseq.duckdb"
    if store_path.exists():
        store_path.unlink()  # the demo always starts from an empty store
    console.rule("[bold]1. generate")
    # Session missions and per-user favourite items are planted so that, as on real logs, the
    # history tells more than the previous item (a first-order Markov chain fits a log without
    # them exactly, and no sequence model could honestly beat it there).
    config = GeneratorConfig(
        n_events=events,
        seed=seed,
        dirty_fraction=0.001,
        duplicate_fraction=0.002,
        plant_sequence_structure=True,
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
    with console.status("building sequences and split"):
        split = load_split(store_path, SplitConfig(), threads)
    # A short SASRec fit (3 epochs, sampled softmax) keeps this step to about two minutes; real
    # runs use the defaults. On 1 M generated events SASRec alone stays below Markov, and its
    # fusion with Markov (the weight chosen on validation) beats it: both rows are shown.
    sasrec = {
        "loss": "sampled_ce",
        "n_negatives": 1024,
        "max_len": 20,
        "hidden_size": 64,
        "batch_size": 256,
        "lr": 0.003,
        "n_epochs": 3,
        "valid_exclude_seen": False,  # validate as the demo ranks (seen items kept)
    }
    evaluation = EvaluateConfig(
        models=("sasrec", "fusion"),
        seed=seed,
        ranking=RankingConfig(exclude_seen=False, seed=seed),
        max_cases=5000,
        dataset="demo (generated)",
        out=workdir,  # leaderboard.json beside the store: the report picks it up
        params={
            "sasrec": sasrec,
            "fusion": {"partner": "markov", "valid_exclude_seen": False, "sasrec": sasrec},
        },
    )
    with console.status("fitting and ranking"):
        board = evaluate_next_item(evaluation, split, log=console.print)
    show_leaderboard(console, board)
    console.rule("[bold]6. forecast")
    # Few series and fast models keep this step to seconds: daily purchases, top 4 categories.
    forecast_job = ForecastJobConfig(
        series=SeriesConfig(metric=Metric.PURCHASES, top_categories=4),
        backtest=BacktestConfig(horizon=14, no_refit=NO_REFIT),
        models=FAST_FORECASTERS,
        threads=threads or 1,
    )
    with console.status("backtesting and forecasting"):
        show_forecast_leaderboard(console, run_forecast(store_path, forecast_job, workdir))
    console.rule("[bold]7. plan")
    plan_job = PlanJobConfig(
        plan=PlanConfig(budget=10_000.0, lead_periods=1), top_categories=4, threads=threads or 1
    )
    with console.status("forecasting demand and allocating"):
        show_plan(console, run_plan(store_path, plan_job, workdir))
    console.rule("[bold]8. per-user predictions: churn and customer value")
    predict_dirs = []
    for task in ("churn", "clv"):
        job = PredictConfig(
            task=task,
            n_estimators=150,
            evaluation=EvaluationConfig(n_resamples=100, seed=seed),
            threads=threads or 1,
            seed=seed,
            out=workdir / f"predict-{task}",
        )
        with console.status(f"predict {task}: examples, training, evaluation, scoring"):
            result = predict_users(job, store_path)
        show_prediction(result, top=5)
        predict_dirs.append(result.run.path)
    console.rule("[bold]9. report")
    report_path = workdir / "report.html"
    report_config = ReportConfig(artifact_dirs=(workdir, *predict_dirs))
    run_report(store_path, report_path, report_config, threads)
    console.print(
        f"\nstore: {escape(str(store_path))}   (try: shopseq stats --store "
        f"{escape(str(store_path))}; shopseq train -m sknn --store {escape(str(store_path))})"
    )
    console.print(
        f"open the report: {escape(str(report_path.resolve()))}", highlight=False, soft_wrap=True
    )
