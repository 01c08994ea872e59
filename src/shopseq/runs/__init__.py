"""The runs layer: one job per task between the library and every front end.

The CLI, the benchmarks, the report and the service call these and only render what comes back:

* ``catalogue.py``: the model catalogues as plain data (next-item models, forecasters).
* ``rundir.py``: :class:`RunDir`, the fixed, versioned layout of a run directory.
* ``nextitem.py``: train one next-item model into a run, evaluate a line-up, answer from a run.
* ``forecast.py``: backtest and forecast series from the store; turn forecasts into a plan.
* ``engine.py``: which engine runs the table stages (the DuckDB file or Spark) and its settings.

Per-user prediction jobs join here as the per-user models land. Only the light modules are
re-exported here; import the jobs from their modules (``from shopseq.runs.nextitem import
train_next_item``), so that naming a model (``shopseq --help``) imports no model library.
"""

from shopseq.runs.catalogue import (
    DEFAULT_FORECASTERS,
    FAST_FORECASTERS,
    FORECASTERS,
    NEXT_ITEM_MODELS,
    NO_REFIT,
    ForecasterSettings,
    NextItemSpec,
    make_forecasters,
    next_item_spec,
)
from shopseq.runs.rundir import RUN_LAYOUT_VERSION, RunDir

__all__ = [
    "DEFAULT_FORECASTERS",
    "FAST_FORECASTERS",
    "FORECASTERS",
    "NEXT_ITEM_MODELS",
    "NO_REFIT",
    "RUN_LAYOUT_VERSION",
    "ForecasterSettings",
    "NextItemSpec",
    "RunDir",
    "make_forecasters",
    "next_item_spec",
]
