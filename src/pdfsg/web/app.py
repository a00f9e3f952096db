"""The upload page and JSON API behind ``pdfsg serve``.

:func:`create_app` builds a FastAPI application around one :class:`~pdfsg.predict.Predictor`
(loaded once, when the app is created):

``GET /``
    The page: drop PDF files, see each curve on the model's grid and its ranked space groups
    (table and bar chart).  Plain HTML + one vanilla script, no external resources.
``POST /api/predict``
    Multipart field ``files`` (one or more PDF files), optional text fields ``composition``
    (none, or one per file in upload order: a formula such as ``La0.72Ca0.28MnO3``; an empty
    one keeps the file header's composition); query ``top``, ``qmax`` and ``label_set``
    (``paper45``: rank only the model's groups among the paper's 45, renormalised; ``all``,
    the default: every group of the model).  The body is the
    JSON of ``pdfsg predict --format json`` (a list with one entry per file, in upload
    order: ``data_settings`` says which composition was used and where it came from,
    ``notes`` when the ranking used G(r) alone), each successful entry with the curve on the
    model grid added (``r`` [Å] and ``x``, the normalised G), each failed one
    ``{"file", "error"}`` (a composition that cannot be read fails its file only).
``GET /api/info``
    The model (name, label count, r grid, Qmax), the label sets it can be restricted to and
    the upload limits.

HTTP status policy of ``POST /api/predict``
    * **200** when at least one file was ranked; files that failed are ``{"file", "error"}``
      entries in the list (the same entries as the CLI's JSON).
    * When no file could be ranked the body is ``{"detail": <one line>, "results": [...]}``
      with the per-file entries, and the status says why: **413** when every file was over
      the per-file size limit, **422** when a file could not be used (empty, binary, NaN, one
      column, too short...), **500** only for an unexpected server fault.
    * Whole-request problems answer ``{"detail": <one line>}`` before any file is read:
      **400** no ``files`` field, more than ``max_files`` files, a number of ``composition``
      fields that is neither 0 nor the number of files, or malformed multipart;
      **413** a body larger than ``max_files`` x ``max_file_bytes`` (checked on the
      Content-Length header and while streaming); **415** a body that is not
      multipart/form-data; **422** a bad ``top``, ``qmax`` or ``label_set``.

Uploads are checked by the same code as the CLI: each file is written to a temporary folder
(deleted when the request ends, whatever happens) under a fixed safe name that keeps only
its suffix, and read with :meth:`~pdfsg.predict.Predictor.predict_file`; the temporary path
is replaced by the uploaded file's name in every message.  File names are user input: the
server keeps only their last path component, without control characters, and the page
renders everything from the server as text (``textContent``), under a Content-Security-
Policy that allows no inline script.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from pdfsg import __version__
from pdfsg.errors import PdfsgError

__all__ = [
    "DEFAULT_MAX_FILES",
    "DEFAULT_MAX_FILE_BYTES",
    "create_app",
]

log = logging.getLogger(__name__)

#: largest accepted upload per file [bytes]
DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024
#: most files accepted in one request
DEFAULT_MAX_FILES = 20
#: multipart overhead allowed per file (part headers, boundary) and per request [bytes]
_PART_OVERHEAD = 16 * 1024
_REQUEST_OVERHEAD = 64 * 1024
#: longest file name echoed back (characters)
_MAX_NAME = 120
#: decimals kept for the plotted curve (r [Å], normalised x)
_R_DECIMALS = 6
_X_DECIMALS = 5

_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_RE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RE_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


# --------------------------------------------------------------------------- API schema


class RankedGroupOut(BaseModel):
    space_group: int = Field(description="International Tables number, 1-230")
    symbol: str = Field(description="Hermann-Mauguin symbol, e.g. P4_2/mnm")
    crystal_system: str
    probability: float = Field(ge=0, le=1)


class FileResult(BaseModel):
    """One uploaded file: its ranking (as ``pdfsg predict --format json``) or its error."""

    file: str = Field(description="the uploaded file's name (last path component)")
    predictions: list[RankedGroupOut] | None = Field(
        default=None, description="the `top` most probable space groups, best first"
    )
    crystal_systems: dict[str, float] | None = None
    bravais_lattices: dict[str, float] | None = Field(
        default=None, description="probability of each Bravais lattice (sum over its groups)"
    )
    laue_classes: dict[str, float] | None = Field(
        default=None, description="probability of each Laue class (sum over its groups)"
    )
    prediction_set: dict[str, Any] | None = Field(
        default=None,
        description="the smallest set of groups holding the truth at `level`: space_groups, "
        "symbols, level, method (split conformal when the model is calibrated)",
    )
    uncertainty: str | None = Field(
        default=None, description="one sentence: what is sure and what is not"
    )
    warnings: list[str] | None = None
    notes: list[str] | None = Field(
        default=None, description="plain remarks, e.g. that the ranking used G(r) alone"
    )
    model: str | None = None
    data_settings: dict[str, Any] | None = Field(
        default=None,
        description=(
            "the measurement settings used and where each came from: qmax / qmax_from, "
            "qdamp, radiation, composition (compact formula or null), composition_from "
            "('option': the composition field, 'header': the file, 'title': a file title "
            "that is just the material's name, 'none'), composition_used "
            "(whether the model took it)"
        ),
    )
    refinement: dict[str, Any] | None = Field(
        default=None,
        description="with refine=K: candidate structures of the top K groups refined against "
        "the data (pdffit2): ranking (combined, model and fit ranks, best Rw), candidates "
        "(group, source, Rw, lattice), best, notes; or {error} when nothing could be refined",
    )
    label_set: dict[str, Any] | None = Field(
        default=None,
        description="the groups ranked: name ('all': the model's own, or e.g. 'paper45'), "
        "n_groups (ranked), model_groups (the model's)",
    )
    particle_diameter_nm: float | None = Field(
        default=None,
        description="spherical-particle diameter from how G(r) dies out [nm]; null for bulk "
        "(or larger than the data can tell)",
    )
    particle_size: dict[str, Any] | None = Field(
        default=None,
        description="that estimate: diameter_nm, low_nm, high_nm (10–90 %), bulk, method",
    )
    r: list[float] | None = Field(default=None, description="model grid points covered [Å]")
    x: list[float] | None = Field(default=None, description="normalised G on those points")
    error: str | None = Field(default=None, description="one-line reason the file failed")


class ErrorOut(BaseModel):
    detail: str = Field(description="one-line message")
    results: list[FileResult] | None = Field(
        default=None, description="per-file entries, when the files were read"
    )


class ModelInfo(BaseModel):
    model: str
    models: list[dict[str, Any]]
    n_groups: int
    labels: list[int]
    label_sets: list[dict[str, Any]]
    rmin: float
    rmax: float
    rstep: float
    qmax: float
    max_files: int
    max_file_bytes: int
    version: str


# --------------------------------------------------------------------------- helpers


class _BodyTooLarge(Exception):
    pass


@dataclass
class _Upload:
    name: str
    data: bytes | None  # None: over the size limit
    size: int
    composition: str | None = None  # None: the header's


@dataclass
class _Outcome:
    entry: dict[str, Any]
    status: int  # 200 ranked, 413 too large, 422 unusable, 500 server fault


def display_name(filename: str | None, index: int) -> str:
    """The name shown for an upload: its last path component without control characters,
    at most ``_MAX_NAME`` characters; ``file <index + 1>`` when nothing is left."""
    name = re.split(r"[/\\]", filename or "")[-1]
    name = _RE_CONTROL.sub("", name).strip()
    if len(name) > _MAX_NAME:
        name = name[: _MAX_NAME - 3] + "..."
    return name or f"file {index + 1}"


def _disk_name(name: str) -> str:
    """A fixed safe file name that keeps the upload's suffix (the reader looks at it)."""
    suffix = Path(name).suffix
    return "upload" + (suffix.lower() if _RE_SAFE_SUFFIX.match(suffix) else ".txt")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _error(status: int, detail: str, results: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": _one_line(detail)}
    if results is not None:
        body["results"] = results
    return JSONResponse(body, status_code=status)


def _mb(n: int) -> str:
    """A size for messages: ``5 MB``, ``200 kB``, ``12 bytes``."""
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.3g} MB"
    if n >= 1024:
        return f"{n / 1024:.3g} kB"
    return f"{n} bytes"


def _limited_receive(
    receive: Callable[[], Awaitable[dict[str, Any]]], limit: int
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``receive`` that raises :class:`_BodyTooLarge` once the body passes ``limit`` bytes."""
    seen = 0

    async def wrapped() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge
        return message

    return wrapped


@functools.cache
def _shipped_library() -> Any:
    """The structure library shipped with pdfsg, read once per server."""
    from pdfsg.refine.library import read_library

    return read_library()


_REFINE_LOCK = threading.Lock()

#: files one request may ask to refine (each takes ~20 s: pdffit2 on up to 6 groups)
MAX_REFINE_FILES = 3


def _refinement(res: Any, path: Path, name: str, refine: int, library: Any) -> dict[str, Any]:
    """The ``--refine`` answer of one ranked upload, as in ``pdfsg predict --refine --format
    json`` (``{"error": ...}`` when there is nothing to refine: no composition, short data)."""
    from pdfsg.io import read_pdf_file
    from pdfsg.refine.pipeline import refine_prediction

    data = read_pdf_file(path)
    try:
        with _REFINE_LOCK:  # pdffit2 keeps global state: one refinement at a time
            out = refine_prediction(res, data.r, data.g, top=refine, library=library).to_dict()
    except PdfsgError as exc:
        return {"error": _one_line(str(exc).replace(str(path), name))}
    out["file"] = name
    out["notes"] = [_one_line(str(n).replace(str(path), name)) for n in out["notes"]]
    return out


def _predict_uploads(
    predictor: Any,
    uploads: list[_Upload],
    top: int,
    qmax: float | None,
    max_file_bytes: int,
    refine: int = 0,
    library: Any = None,
    label_set: str | None = None,
) -> list[_Outcome]:
    """Rank each upload through the file reader of the CLI (and refine candidates of its
    top ``refine`` groups); one temporary folder per request, removed on the way out."""
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="pdfsg-web-") as tmp:
        for i, up in enumerate(uploads):
            if up.data is None:
                msg = f"{up.name}: file is {_mb(up.size)}, over the {_mb(max_file_bytes)} limit"
                outcomes.append(_Outcome({"file": up.name, "error": msg}, 413))
                continue
            folder = Path(tmp) / str(i)
            folder.mkdir()
            path = folder / _disk_name(up.name)
            path.write_bytes(up.data)
            try:
                res = predictor.predict_file(
                    path,
                    qmax=qmax,
                    top=max(top, refine),
                    composition=up.composition,
                    label_set=label_set,
                )
                refined = _refinement(res, path, up.name, refine, library) if refine else None
                res.predictions = res.predictions[:top]
            except PdfsgError as exc:
                msg = _one_line(str(exc).replace(str(path), up.name))
                outcomes.append(_Outcome({"file": up.name, "error": msg}, 422))
                continue
            except Exception:
                log.exception("prediction failed for upload %r", up.name)
                msg = f"{up.name}: internal error while ranking this file (see the server log)"
                outcomes.append(_Outcome({"file": up.name, "error": msg}, 500))
                continue
            finally:
                path.unlink(missing_ok=True)
            entry = res.to_dict()
            entry["file"] = up.name
            entry["warnings"] = [_one_line(w.replace(str(path), up.name)) for w in res.warnings]
            entry["r"] = np.round(np.asarray(res.r, dtype=float), _R_DECIMALS).tolist()
            entry["x"] = np.round(np.asarray(res.x, dtype=float), _X_DECIMALS).tolist()
            if refined is not None:
                entry["refinement"] = refined
            outcomes.append(_Outcome(entry, 200))
    return outcomes


def _status_of(outcomes: list[_Outcome]) -> int:
    statuses = {o.status for o in outcomes}
    if 200 in statuses:
        return 200
    if statuses == {413}:
        return 413
    if 500 in statuses:
        return 500
    return 422


def _label_sets(predictor: Any) -> list[dict[str, Any]]:
    """The restrictions the page offers: the model's own groups, and the paper's 45 when
    the model has any of them."""
    from pdfsg.errors import ParamsError

    n = len(predictor.labels)
    out = [{"name": "all", "n_groups": n, "description": f"the model's own {n} groups"}]
    try:
        k = len(predictor.restriction("paper45"))
    except ParamsError:
        return out
    out.append({"name": "paper45", "n_groups": k, "description": f"the paper's 45 ({k} here)"})
    return out


def _model_info(predictor: Any, max_files: int, max_file_bytes: int) -> dict[str, Any]:
    params = predictor.params
    grid = params.r_grid()
    models = []
    for m in predictor.models:
        g = m.params.r_grid()
        name = (getattr(m, "manifest", None) or {}).get("name", "")
        models.append(
            {
                "name": str(name),
                "kind": str(m.kind),
                "rmin": float(g[0]),
                "rmax": float(g[-1]),
                "variable_length": bool(m.variable_length),
            }
        )
    # a folder given on the command line is named by its last component: the page does not
    # show the server's paths
    name = re.split(r"[/\\]", str(predictor.name).rstrip("/\\"))[-1]
    return {
        "model": name or (models[0]["name"] if models else ""),
        "models": models,
        "n_groups": len(predictor.labels),
        "labels": [int(v) for v in predictor.labels],
        "label_sets": _label_sets(predictor),
        "rmin": float(grid[0]),
        "rmax": float(grid[-1]),
        "rstep": float(params.rstep),
        "qmax": float(params.qmax),
        "max_files": max_files,
        "max_file_bytes": max_file_bytes,
        "version": __version__,
    }


# --------------------------------------------------------------------------- the app


def create_app(
    predictor: Any = None,
    model: str | Path = "default",
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    max_parallel: int = 2,
) -> FastAPI:
    """The web application of ``pdfsg serve``.

    Parameters
    ----------
    predictor : Predictor or None
        The model to serve; ``None`` loads ``model`` now (once, before the first request).
    model : str or Path
        Model name or folder for :meth:`Predictor.load` when ``predictor`` is None.
    max_file_bytes : int  [bytes]
        Largest accepted file; larger files get an error entry (status 413 if all are).
    max_files : int
        Most files in one request (more: status 400).
    max_parallel : int
        Requests ranked at the same time (worker threads); the others wait.

    Raises
    ------
    ModelError
        When ``model`` cannot be loaded.
    ValueError
        On a limit below 1.
    """
    if max_file_bytes < 1 or max_files < 1 or max_parallel < 1:
        raise ValueError("max_file_bytes, max_files and max_parallel must be >= 1")
    if predictor is None:
        from pdfsg.predict import Predictor

        predictor = Predictor.load(model)
    max_request_bytes = max_files * (max_file_bytes + _PART_OVERHEAD) + _REQUEST_OVERHEAD
    n_labels = len(predictor.labels)
    info = _model_info(predictor, max_files, max_file_bytes)
    static_dir = files("pdfsg.web") / "static"
    index_html = (static_dir / "index.html").read_bytes()
    static = {name: (static_dir / name).read_bytes() for name in _STATIC}
    limiter = anyio.CapacityLimiter(max_parallel)

    app = FastAPI(
        title="pdfsg",
        version=__version__,
        description=(
            "Rank the crystallographic space groups of a material from its measured pair "
            f"distribution function G(r). Model: {info['model']} ({n_labels} space groups, "
            f"r {info['rmin']:.2f}-{info['rmax']:.2f} Å). Limits: {max_files} files per "
            f"request, {_mb(max_file_bytes)} per file."
        ),
    )
    app.state.predictor = predictor
    app.state.max_file_bytes = max_file_bytes
    app.state.max_files = max_files

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        return _error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(
            index_html, media_type="text/html; charset=utf-8", headers=_SECURITY_HEADERS
        )

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        if name not in static:
            return _error(404, "Not Found")
        return Response(static[name], media_type=_STATIC[name], headers=_SECURITY_HEADERS)

    @app.get("/api/info", response_model=ModelInfo, summary="The model and the upload limits")
    async def api_info() -> dict[str, Any]:
        return info

    @app.post(
        "/api/predict",
        summary="Rank the space groups of uploaded PDF files",
        description=(
            "Send one or more PDF files (.gr from PDFgetX3/X2/N or xPDFsuite, PDFgui .cgr/.fgr, "
            "plain `r G` columns) as multipart field `files`, and optionally one text field "
            "`composition` per file (a formula; empty: the file header's). The answer is the "
            "JSON of "
            "`pdfsg predict --format json`, one entry per file in upload order, plus the curve "
            "on the model grid (`r` [Å], normalised `x`). 200 when at least one file was "
            "ranked (failed files are `{file, error}` entries); 413 when every file was too "
            "large, 422 when no file could be used; 400 for a request without files, with too "
            "many files, or malformed; 413 for a body over the request limit; 415 for a body "
            "that is not multipart/form-data."
        ),
        response_model=list[FileResult],
        responses={
            400: {"model": ErrorOut, "description": "no files, too many files, bad multipart"},
            413: {"model": ErrorOut, "description": "file(s) or request body too large"},
            415: {"model": ErrorOut, "description": "body is not multipart/form-data"},
            422: {"model": ErrorOut, "description": "no file could be used, or bad parameter"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["files"],
                            "properties": {
                                "files": {
                                    "type": "array",
                                    "items": {"type": "string", "format": "binary"},
                                    "description": (
                                        f"PDF files, at most {max_files}, each at most "
                                        f"{max_file_bytes} bytes"
                                    ),
                                },
                                "composition": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                    "description": (
                                        "the sample composition of each file, in upload "
                                        "order (none, or one per file): a formula such as "
                                        "'La0.72Ca0.28MnO3' or 'Cd Se'; an empty one keeps "
                                        "the composition in the file's header"
                                    ),
                                },
                            },
                        }
                    }
                },
            }
        },
    )
    async def api_predict(
        request: Request,
        top: int = Query(6, ge=1, le=max(n_labels, 1), description="space groups per file"),
        qmax: float | None = Query(
            None, gt=0, le=100, description="Qmax of the data [1/Å]; overrides file headers"
        ),
        refine: int = Query(
            0,
            ge=0,
            le=10,
            description="refine candidate structures of the top `refine` groups of each file "
            f"against its data (pdffit2; ~20 s a file, at most {MAX_REFINE_FILES} files); 0: off",
        ),
        label_set: str | None = Query(
            None,
            max_length=20,
            description="rank only the model's groups in this set, their probabilities "
            "renormalised: 'paper45' (the paper's 45 groups) or 'all230'; 'all' (default): "
            "every group of the model",
        ),
    ) -> Response:
        if qmax is not None and not math.isfinite(qmax):
            return _error(422, "qmax: must be a finite number")
        try:
            predictor.restriction(label_set)
        except PdfsgError as exc:
            return _error(422, str(exc))
        ctype = request.headers.get("content-type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            return _error(415, "send the files as multipart/form-data in the field 'files'")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_request_bytes:
            return _error(
                413,
                f"request body is {_mb(int(length))}, over the {_mb(max_request_bytes)} limit "
                f"({max_files} files of at most {_mb(max_file_bytes)})",
            )
        limited = Request(request.scope, _limited_receive(request.receive, max_request_bytes))
        try:
            async with limited.form(max_files=max_files, max_fields=2 * max_files + 10) as form:
                uploads = []
                items = form.getlist("files")
                if not items:
                    return _error(400, "no files: send them in the multipart field 'files'")
                compositions = form.getlist("composition")
                if compositions and len(compositions) != len(items):
                    return _error(
                        400,
                        f"composition: give one per file or none ({len(items)} files, "
                        f"{len(compositions)} composition fields)",
                    )
                if any(not isinstance(c, str) for c in compositions):
                    return _error(400, "composition: a text field, not a file upload")
                for i, item in enumerate(items):
                    if not isinstance(item, UploadFile):
                        return _error(400, f"'files' entry {i + 1} is not a file upload")
                    name = display_name(item.filename, i)
                    data = await item.read(max_file_bytes + 1)
                    comp = str(compositions[i]).strip() if compositions else ""
                    if len(data) > max_file_bytes:
                        uploads.append(_Upload(name, None, item.size or len(data)))
                    else:
                        uploads.append(_Upload(name, data, len(data), comp or None))
        except _BodyTooLarge:
            return _error(413, f"request body is over the {_mb(max_request_bytes)} limit")
        except StarletteHTTPException as exc:  # starlette's multipart errors
            detail = str(exc.detail)
            if "Too many files" in detail:
                return _error(400, f"too many files: at most {max_files} per request")
            return _error(400, f"bad upload: {detail}")

        if refine and len(uploads) > MAX_REFINE_FILES:
            return _error(
                400, f"refine: at most {MAX_REFINE_FILES} files per request ({len(uploads)} sent)"
            )
        library = _shipped_library() if refine else None
        outcomes = await anyio.to_thread.run_sync(
            _predict_uploads, predictor, uploads, top, qmax, max_file_bytes, refine, library,
            label_set, limiter=limiter,
        )  # fmt: skip
        results = [o.entry for o in outcomes]
        status = _status_of(outcomes)
        if status == 200:
            return JSONResponse(results)
        errors = [o.entry["error"] for o in outcomes]
        if len(errors) == 1:
            detail = errors[0]
        else:
            detail = f"none of the {len(errors)} files could be used: " + "; ".join(errors)
        return _error(status, detail, results)

    return app
