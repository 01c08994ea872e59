"""The `shopseq` command: one Typer app composed from one module per command.

Errors raised on purpose (``ShopseqError``) are shown as one readable line and exit with 2 (bad
input) or 1 (anything else); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import os
import sys

import click
import typer

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


def run(argv: list[str]) -> int:
    """Run the command line and return its exit code (used by ``main`` and the tests).

    Args:
        argv: Arguments after the program name.

    Returns:
        0 on success, 2 for bad input, 1 for other errors.
    """
    debug = "--debug" in argv
    args = [a for a in argv if a != "--debug"]
    try:
        app(args=args, prog_name="shopseq", standalone_mode=False)
    except InputError as err:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        return 2
    except ShopseqError as err:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        return 1
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except click.Abort:
        err_console.print("aborted")
        return 1
    return 0


def main() -> None:
    """Console entry point."""
    code = run(sys.argv[1:])
    if launched_by_torchrun(os.environ):
        exit_process(code)  # a torchrun worker ends without interpreter teardown (see cluster)
    sys.exit(code)
