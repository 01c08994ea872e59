"""The `shopseq` command: one Typer app composed from one module per command.

Errors raised on purpose (``ShopseqError``) are shown as one readable line and exit with 2 (bad
input) or 1 (anything else); usage errors (unknown option, bad value, missing argument) print the
usage line and exit 2, whichever copy of click raised them (Typer vendors its own); anything
unexpected is one line too, exit 1. No traceback reaches the user; ``--debug`` shows it.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer
from rich.markup import escape

from shopseq.errors import InputError, ShopseqError

from .analyze import app as analyze_app
from .cluster import exit_process, launched_by_torchrun
from .demo import demo
from .evaluate import evaluate
from .export import export
from .forecast import forecast
from .generate import generate
from .ingest import ingest
from .options import err_console
from .plan import plan
from .predict import predict
from .prepare import prepare
from .recommend import recommend
from .report import report
from .sequences import sequences
from .serve import app as serve_app
from .stats import stats
from .train import train

__all__ = ["app", "main", "run"]

app = typer.Typer(
    name="shopseq",
    help="E-commerce behaviour logs to analyses, predictions and plans.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(demo)
app.command()(evaluate)
app.command()(export)
app.command()(forecast)
app.command()(generate)
app.command()(ingest)
app.command()(plan)
app.command()(predict)
app.command()(prepare)
app.command()(recommend)
app.command()(report)
app.command()(sequences)
app.add_typer(analyze_app, name="analyze")
app.add_typer(serve_app, name="serve")
app.command()(stats)
app.command()(train)


def _classes(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from click and from Typer's vendored copy of it (whichever are installed)."""
    found: list[type[BaseException]] = []
    for module in ("click.exceptions", "typer._click.exceptions", "typer.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


_USAGE_ERRORS = _classes("UsageError")
_CLICK_ERRORS = _classes("ClickException")
_EXITS = _classes("Exit")
_ABORTS = _classes("Abort")


def _usage_error(err: Any) -> int:
    """Show a usage error with the usage line (the command's, or the program's)."""
    if getattr(err, "ctx", None) is None:
        err_console.print(
            "Usage: shopseq [OPTIONS] COMMAND [ARGS]...\nTry 'shopseq --help' for help.\n",
            markup=False,
            highlight=False,
        )
    err.show()
    return 2


def _show_error(err: BaseException) -> None:
    # The message quotes user input (paths, values): never let Rich read it as markup.
    err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)


def run(argv: list[str]) -> int:
    """Run the command line and return its exit code (used by ``main`` and the tests).

    Args:
        argv: Arguments after the program name.

    Returns:
        0 on success, 2 for bad input or a usage error, 1 for other errors.
    """
    debug = "--debug" in argv
    args = [a for a in argv if a != "--debug"]
    try:
        result = app(args=args, prog_name="shopseq", standalone_mode=False)
    except InputError as err:
        if debug:
            raise
        _show_error(err)
        return 2
    except ShopseqError as err:
        if debug:
            raise
        _show_error(err)
        return 1
    except _USAGE_ERRORS as err:
        return _usage_error(err)
    except _CLICK_ERRORS as err:  # e.g. a file option that cannot be opened: still bad input
        return _usage_error(err)
    except _EXITS as err:
        return int(getattr(err, "exit_code", 0))
    except _ABORTS:
        err_console.print("aborted")
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as err:
        if debug:
            raise
        err_console.print(
            f"[bold red]internal error:[/] {escape(type(err).__name__)}: {escape(str(err))} "
            "(this is a shopseq bug; rerun with --debug for the traceback and report it)",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    # Typer returns the code of an explicit Exit instead of raising it when not standalone.
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    return 0


def main() -> None:
    """Console entry point."""
    code = run(sys.argv[1:])
    if launched_by_torchrun(os.environ):
        exit_process(code)  # a torchrun worker ends without interpreter teardown (see cluster)
    sys.exit(code)
