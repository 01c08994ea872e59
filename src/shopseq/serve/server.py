"""Run the app under uvicorn: one process, one worker (STACK.md: ``--workers`` was slower here).

Scale out by starting more processes (``--reuse-port`` lets several bind one port, and the kernel
spreads connections over them) with a shared Redis state. uvicorn's access log is off: it prints
raw paths, which hold user ids; ``metrics.AccessMiddleware`` logs route templates instead.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

from shopseq.serve.app import create_app
from shopseq.serve.config import ServeConfig
from shopseq.serve.service import Service

__all__ = ["configure_logging", "serve"]


def configure_logging(level: str = "info") -> None:
    """Send shopseq's and uvicorn's logs to stderr, one line each.

    Args:
        level: Log level name.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("shopseq", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def serve(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    reuse_port: bool = False,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM: queued events are committed first).

    Args:
        config: The service's config.
        host: Address to bind.
        port: Port to bind.
        reuse_port: Bind with ``SO_REUSEPORT`` so several processes can share the port.
        log_level: Log level.
        access_log: Log one line per request (method, route template, status, milliseconds).
    """
    import uvicorn

    configure_logging(log_level)
    if not access_log:
        logging.getLogger("shopseq.serve.access").setLevel(logging.WARNING)
    # Built before uvicorn starts, so a run, log, key or Redis problem is a clear error with exit
    # code 1 or 2 (inside the lifespan it would be uvicorn's "Application startup failed").
    service = Service(config)
    try:
        _run(uvicorn, create_app(config, service=service), host, port, reuse_port)
    finally:
        service.close()


def _run(uvicorn: Any, app: Any, host: str, port: int, reuse_port: bool) -> None:
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
            loop="uvloop" if _has("uvloop") else "asyncio",
            http="httptools" if _has("httptools") else "h11",
        )
    )
    if not reuse_port:
        server.run()
        return
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    os.set_inheritable(sock.fileno(), True)
    server.run(sockets=[sock])


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
