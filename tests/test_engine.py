"""The engine option and the Parquet store layout, without starting Spark."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from shopseq.cli import run
from shopseq.cli.cluster import engine_config
from shopseq.errors import ConfigError, StoreError
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.prepare import PREPARED_TABLE, PrepareConfig, prepare_events
from shopseq.runs.engine import EngineConfig, SparkConfig
from shopseq.store import PARTITION_COLUMN, open_store
from shopseq.synthetic import GeneratorConfig, generate_events, write_events


def test_engine_flags_become_one_config() -> None:
    assert engine_config("duckdb", "local[*]", "shopseq", None, None) == EngineConfig()
    config = engine_config(
        "spark", "spark://h:7077", "shop", ["spark.executor.memory=8g", " a.b = c "], "s3a://b/x"
    )
    assert config.spark == SparkConfig(
        master="spark://h:7077",
        app_name="shop",
        conf={"spark.executor.memory": "8g", "a.b": "c"},
        output="s3a://b/x",
    )
    settings = config.spark.session_conf()
    assert settings["spark.sql.session.timeZone"] == "UTC"
    assert settings["spark.sql.warehouse.dir"] == "s3a://b/x/_warehouse"
    assert settings["spark.executor.memory"] == "8g"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sqlite", "local", "a", None, None), "--engine must be 'duckdb' or 'spark'"),
        (("spark", "local", "a", None, None), "--engine spark needs --spark-output"),
        (("duckdb", "local", "a", None, "/tmp/x"), "need --engine spark"),
        (("spark", "local", "a", ["novalue"], "/tmp/x"), "KEY=VALUE; got 'novalue'"),
        (
            ("spark", "local", "a", ["spark.sql.session.timeZone=Europe/Paris"], "/tmp/x"),
            "--spark-conf: spark.sql.session.timeZone must be 'UTC'",
        ),
        (("spark", "local", "a", None, "  "), "--spark-output: must name a directory"),
    ],
)
def test_bad_engine_flags_name_the_flag(args: tuple, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        engine_config(*args)


def test_an_engine_config_is_consistent() -> None:
    with pytest.raises(ValidationError, match="needs a Spark config"):
        EngineConfig(engine="spark")
    with pytest.raises(ValidationError, match="the engine is 'duckdb'"):
        EngineConfig(spark=SparkConfig(output="/tmp/x"))


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    config = GeneratorConfig(n_events=3000, n_days=5, seed=2)
    log = tmp_path / "events.csv"
    write_events(generate_events(config), log, config)
    path = tmp_path / "shop.duckdb"
    with open_store(path, threads=1) as store:
        ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
        prepare_events(store, PrepareConfig())
    return path


def test_exported_tables_read_back_from_the_parquet_layout(prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "parquet"
    with open_store(prepared, read_only=True) as store:
        expected = store.table(PREPARED_TABLE).order_by(["source_row"]).to_pyarrow()
        store.export_parquet(PREPARED_TABLE, out)
        store.export_parquet("source_files", out)  # no ts: one file, no partitions
    days = sorted(p.name for p in (out / PREPARED_TABLE).iterdir())
    assert days == [f"{PARTITION_COLUMN}=2024-01-0{d}" for d in range(1, 6)]
    assert list((out / "source_files").glob("*.parquet"))
    with open_store(out, read_only=True) as local:
        assert local.table(PREPARED_TABLE).schema().names == tuple(expected.schema.names)
        got = local.table(PREPARED_TABLE).order_by(["source_row"]).to_pyarrow()
        assert got.equals(expected.cast(got.schema))
        assert local.has_table("source_files")
    with pytest.raises(StoreError, match="opens read-only"):
        open_store(out)
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="holds no Parquet table"):
        open_store(tmp_path / "empty", read_only=True)


def test_export_then_train_reads_the_parquet_directory(prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "parquet"
    assert run(["export", "--to", str(out), "--store", str(prepared)]) == 0
    assert run(["export", PREPARED_TABLE, "--to", str(out), "--store", str(prepared)]) == 0
    code = run(["train", "-m", "markov", "--store", str(out), "--out", str(tmp_path / "run")])
    assert code == 0 and (tmp_path / "run" / "metrics.json").is_file()
    assert run(["prepare", "--engine", "spark", "--store", str(prepared)]) == 2


def test_spark_workers_run_this_python_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from shopseq.cli.cluster import spark_workers_use_this_python

    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    spark_workers_use_this_python()
    assert os.environ["PYSPARK_PYTHON"] == sys.executable
    monkeypatch.setenv("PYSPARK_PYTHON", "/opt/cluster/python")
    spark_workers_use_this_python()
    assert os.environ["PYSPARK_PYTHON"] == "/opt/cluster/python"
