"""The CLI edge of running beyond one process: torchrun's environment.

torchrun starts one ``shopseq train`` per process and describes each in environment variables;
this module reads them (library code never reads the environment) into the typed
``DistributedConfig`` that the training loop gets through ``TorchRuntime``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from shopseq.errors import ConfigError
from shopseq.runtime import DistributedConfig

__all__ = ["exit_process", "launched_by_torchrun", "torchrun_distributed"]

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
