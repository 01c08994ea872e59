"""The HTTP service: live events in (durable, group-committed), recommendations out.

* ``app.py``: ``create_app(config)`` and its lifespan; error bodies.
* ``config.py``: :class:`ServeConfig`, the one config (built at the edge, passed down).
* ``service.py``: the live objects (served model, state, committer) and the hot reload.
* ``committer.py``: group commit of posted events (ingest's rules, one fsync per group).
* ``state.py``: each user's recent items, in memory or in Redis, behind one interface.
* ``keys.py`` / ``security.py``: hashed API keys, key checks, the body limit.
* ``metrics.py``: Prometheus instruments and the access log by route template.
* ``schemas.py``: request and response bodies (the OpenAPI spec).
* ``routes/``: one router per resource.
* ``server.py``: run the app under uvicorn (one process; no access log with raw paths).
"""

from shopseq.serve.app import create_app
from shopseq.serve.config import ServeConfig
from shopseq.serve.keys import KeyStore

__all__ = ["KeyStore", "ServeConfig", "create_app"]
