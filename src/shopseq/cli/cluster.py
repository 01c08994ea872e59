"""The CLI edge of running beyond one machine: the engine flags and torchrun's environment.

``--engine spark`` with ``--spark-master``, ``--spark-app-name``, ``--spark-conf KEY=VALUE`` and
``--spark-output`` becomes one typed ``runs.engine.EngineConfig`` (:func:`engine_config`).

torchrun starts one ``shopseq train`` per process and describes each in environment variables;
this module reads them (library code never reads the environment) into the typed
``DistributedConfig`` that the training loop gets through ``TorchRuntime``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Annotated

import typer
from pydantic import ValidationError

from shopseq.errors import ConfigError
from shopseq.runs.engine import EngineConfig, SparkConfig
from shopseq.runtime import DistributedConfig

from .flags import flag_errors

__all__ = [
    "EngineOption",
    "SparkAppOption",
    "SparkConfOption",
    "SparkMasterOption",
    "SparkOutputOption",
    "engine_config",
    "exit_process",
    "launched_by_torchrun",
    "spark_workers_use_this_python",
    "torchrun_distributed",
]

EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="duckdb (the --store file) or spark (reads and writes Parquet at --spark-output).",
    ),
]
SparkMasterOption = Annotated[
    str,
    typer.Option("--spark-master", help="Spark master URL (local[*], spark://host:7077, yarn)."),
]
SparkAppOption = Annotated[str, typer.Option("--spark-app-name", help="Spark application name.")]
SparkConfOption = Annotated[
    list[str] | None,
    typer.Option(
        "--spark-conf",
        help="Spark setting KEY=VALUE (repeat the flag), e.g. spark.executor.memory=8g.",
        show_default=False,
    ),
]
SparkOutputOption = Annotated[
    str | None,
    typer.Option(
        "--spark-output",
        help="With --engine spark: directory or URI of the Parquet tables (events read from "
        "<output>/events, results written beside it; --store reads them on one machine).",
        show_default=False,
    ),
]


def engine_config(
    engine: str, master: str, app_name: str, conf: Sequence[str] | None, output: str | None
) -> EngineConfig:
    """The engine named by the engine flags.

    Args:
        engine: ``--engine``.
        master: ``--spark-master``.
        app_name: ``--spark-app-name``.
        conf: ``--spark-conf`` pairs.
        output: ``--spark-output``.

    Returns:
        The engine config.

    Raises:
        ConfigError: Naming the flag of an invalid value.
    """
    if engine not in ("duckdb", "spark"):
        raise ConfigError(f"--engine must be 'duckdb' or 'spark'; got {engine!r}")
    if engine == "duckdb":
        if output is not None or conf:
            raise ConfigError("--spark-output and --spark-conf need --engine spark")
        return EngineConfig()
    if output is None:
        raise ConfigError("--engine spark needs --spark-output (where the Parquet tables are)")
    pairs: dict[str, str] = {}
    for pair in conf or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--spark-conf must be KEY=VALUE; got {pair!r}")
        pairs[key.strip()] = value.strip()
    try:
        spark = SparkConfig(master=master, app_name=app_name, conf=pairs, output=output)
    except ValidationError as err:
        flags = {"conf": "--spark-conf", "output": "--spark-output", "master": "--spark-master"}
        raise ConfigError(flag_errors(err, flags)) from err
    return EngineConfig(engine="spark", spark=spark)


def spark_workers_use_this_python() -> None:
    """Let Spark's Python workers run this interpreter unless ``PYSPARK_PYTHON`` says otherwise.

    PySpark starts its workers with ``$PYSPARK_PYTHON`` (default: ``python3`` on the PATH), which
    may lack shopseq and pyarrow; Spark ingest renders its quarantine messages there. On a
    cluster, set ``PYSPARK_PYTHON`` to an environment that has both.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


_TORCHRUN = ("RANK", "WORLD_SIZE")


def launched_by_torchrun(environ: Mapping[str, str]) -> bool:
    """Whether torchrun (or another launcher setting ``RANK`` and ``WORLD_SIZE``) started us.

    Args:
        environ: The environment.

    Returns:
        Whether both variables are set.
    """
    return all(key in environ for key in _TORCHRUN)


def torchrun_distributed(environ: Mapping[str, str], backend: str) -> DistributedConfig | None:
    """This process's place in a torchrun launch, or ``None`` when not launched by torchrun.

    Args:
        environ: The environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
            ``MASTER_PORT``).
        backend: ``--dist-backend`` (``auto``, ``gloo`` or ``nccl``).

    Returns:
        The config, or ``None``.

    Raises:
        ConfigError: If a variable does not hold a valid value.
    """
    if not launched_by_torchrun(environ):
        return None
    fields: dict[str, object] = {
        "backend": backend,
        "master_addr": environ.get("MASTER_ADDR", "127.0.0.1"),
    }
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        if key not in environ:
            continue
        try:
            fields[key.lower()] = int(environ[key])
        except ValueError as err:
            raise ConfigError(
                f"environment variable {key}={environ[key]!r} must be an integer "
                "(is this process started by torchrun?)"
            ) from err
    try:
        return DistributedConfig.model_validate(fields)
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"torchrun environment: {err}") from err


def exit_process(code: int) -> None:
    """End a torchrun worker at once with ``code``, after flushing its output.

    Interpreter teardown after gloo collectives aborted ~20 % of finished runs here
    (STACK.md); ``os._exit`` after leaving the process group ended 10 of 10 cleanly.

    Args:
        code: Exit code.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
