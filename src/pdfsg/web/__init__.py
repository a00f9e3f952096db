"""The web page and JSON API of ``pdfsg serve`` (FastAPI; needs the ``web`` extra).

``create_app(predictor=None, model="default", ...)`` builds the application; see
:mod:`pdfsg.web.app` for the endpoints, the upload limits and the HTTP status policy.
Importing this package is cheap: FastAPI is imported when ``create_app`` is first used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from pdfsg.web.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
