"""Serve a model over HTTP: the prediction API, explanations, and a web page to draw digits on.

Needs the ``serve`` extra: ``pip install 'vitlens[serve]'`` (FastAPI, uvicorn, python-multipart).
"""

from __future__ import annotations

from pathlib import Path

from vitlens.serve.app import create_app
from vitlens.serve.batching import MicroBatcher
from vitlens.serve.inputs import Limits, RequestError


def serve(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 64,
          max_wait_ms: float = 2.0, limits: Limits | None = None, log_level: str = "warning") -> None:
    """Run the service until interrupted (uvicorn, one process)."""
    import uvicorn

    app = create_app(checkpoint, max_batch=max_batch, max_wait_ms=max_wait_ms, limits=limits)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


__all__ = ["Limits", "MicroBatcher", "RequestError", "create_app", "serve"]
