"""The scaling benchmark's own arithmetic: the growth exponent and the failure line it reports."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def scaling() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))  # for its `markdown_report` import
        spec = importlib.util.spec_from_file_location(
            "scaling_benchmark", BENCHMARKS / "scaling.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def test_a_failed_stage_is_reported_by_its_exception_not_by_duckdbs_hints(
    scaling: ModuleType,
) -> None:
    stderr = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "_duckdb.OutOfMemoryException: Out of Memory Error: could not allocate block\n"
        "\n"
        "Possible solutions:\n"
        "* Reducing the number of threads (SET threads=X)\n"
        "See also https://duckdb.org/docs/stable/guides/performance/how_to_tune_workloads\n"
    )
    assert scaling._error_line(stderr) == (
        "_duckdb.OutOfMemoryException: Out of Memory Error: could not allocate block"
    )
    assert scaling._error_line("killed\n") == "killed"
    assert scaling._error_line("") == "?"


def test_the_growth_exponent_is_the_log_log_slope(scaling: ModuleType) -> None:
    sizes = [1_000_000, 10_000_000, 100_000_000]
    assert scaling.fit_exponent(sizes, [2.0 * s for s in sizes]) == pytest.approx(1.0)
    assert scaling.fit_exponent(sizes, [s**1.5 for s in sizes]) == pytest.approx(1.5)
    assert scaling.fit_exponent(sizes[:1], [1.0]) is None
