"""The HTTP surface of ``mlsm serve``: routes, the error contract, API key auth, request ids, access log, OpenAPI.

Endpoints::

    POST /v1/score            one record -> its result document; {"records": [...]} -> {"results": [...]}
    POST /v1/outcomes         one outcome or {"outcomes": [...]} -> {"stored": n, "outcomes": [...]} once committed
    GET  /v1/models           the live model set: generation, source hash, each model's fields
    GET  /v1/results/{id}     the id's current document (?history=true: every document, newest first); 404
    POST /v1/admin/reload     re-import + preflight + atomic swap; 409 with the reasons when refused
    GET  /report              the evaluation report (mlsm report's HTML page) of the service's store
    GET  /favicon.ico         204: a browser showing /report asks for it
    GET  /openapi.json        OpenAPI 3.1, with the live set's input fields as the record schema
    GET  /healthz /readyz /metrics    open even when an API key is configured

Error contract of ``/v1/score``: malformed JSON 400; a JSON value that is not a record or ``{"records": [...]}``
422; a record without the id, or with text that is not valid Unicode (a lone surrogate), 422 naming the field; a
body over the limit 413 (the rest is not read), more records than ``max_records`` 413; a body that is not
``application/json`` 415 (every ``POST``); a field a model needs that is missing or invalid: 200 with ``_error`` in
that model's slot; results the store refuses for good: 422; results that cannot be stored now: 503 with
Retry-After. ``/v1/outcomes`` follows it (:mod:`mlsm.service.evaluation`): an item that breaks a rule of
``mlsm outcomes load`` is 422 naming the item and why, and nothing of the request is stored. Every error, a bad
query parameter's and a 500's included, is ``{"detail": "...", "request_id": "..."}``.

Keys (:mod:`mlsm.service.keys`): with scoring keys, ``/v1/...``, ``/report`` and the OpenAPI document need one (or
an admin key); ``/v1/admin/...`` needs an admin key when admin keys are configured (a scoring key there: 403), else
it answers loopback clients only (403 otherwise). A request let in without any key must name a loopback ``Host`` and
``Origin`` (if it sends one): a web page open on this machine cannot score or reload (DNS rebinding, CSRF).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import secrets
import signal
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from mlsm._version import __version__
from mlsm.documents import encode, encode_value
from mlsm.errors import (
    InvalidId,
    QueueFull,
    ReloadError,
    RequestError,
    ResultNotStored,
    ResultRefused,
    RunError,
    StoreError,
)
from mlsm.evaluation._assemble import report_page
from mlsm.ids import normalize_id
from mlsm.service._bodies import check_text, decode_json, json_kind, record_id
from mlsm.service.evaluation import outcomes_answer, report_options, request_outcomes
from mlsm.service.keys import ADMIN, SCORING
from mlsm.service.modelset import ServingSet, settings_changes
from mlsm.service.openapi import add_model_schemas
from mlsm.service.runtime import ServiceRuntime
from mlsm.service.settings import is_loopback

__all__ = ["JSON", "Message", "Receive", "Scope", "Send", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = "application/json"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CONVERTER = re.compile(r"\{(\w+):\w+\}")
_OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_GUARDED_PATHS = frozenset({"/openapi.json", "/report"})  # beside /v1/...: behind the scoring key
#: A body up to this size is parsed on the event loop, a larger one on a thread (see _score).
_INLINE_BYTES = 16 * 1024
#: A response of up to this many documents is joined on the event loop.
_INLINE_RECORDS = 16


def create_app(runtime: ServiceRuntime, *, handle_sighup: bool = False) -> FastAPI:
    """The ASGI app serving ``runtime``; its lifespan starts and stops the runtime (and, with ``handle_sighup``,
    reloads the models on SIGHUP). The handlers below find the runtime in ``app.state``."""
    app = _Service(
        title="mlsm scoring service",
        version=__version__,
        description="Scores records with a versioned model set and stores every result with its history.",
        lifespan=_lifespan,
        openapi_url=None,  # served by _openapi(), behind the API key, with the live model set's fields
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.handle_sighup = handle_sighup
    app.state.openapi = {}  # the OpenAPI document by the generation it describes
    app.state.reports = asyncio.Semaphore(1)  # GET /report builds one page at a time
    for path, endpoint, options in _ROUTES:
        app.add_api_route(path, endpoint, **options)
    app.add_exception_handler(RequestError, _bad_request)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _bad_parameter)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    # an exception a route lets out is answered and logged by _Edge (one JSON line), never by the server
    app.add_middleware(_Edge, runtime=runtime, routes=app.router.routes)
    app.scoring_edge = _Edge(app.router, runtime, app.router.routes)
    return app


class _Service(FastAPI):
    """The app, with ``POST /v1/score`` taken before Starlette's middleware stack (error handling, body limits,
    telemetry: a layer of calls for every request, some wrapping its ``send``): the edge does all that route needs, its
    exceptions included; every other route passes the whole stack, the edge as its middleware."""

    scoring_edge: _Edge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/score" and scope["method"] == "POST":
            scope["app"] = self
            await self.scoring_edge(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime: ServiceRuntime = app.state.runtime
    await runtime.start()
    loop = asyncio.get_running_loop()
    if app.state.handle_sighup:
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(_reload_quietly(runtime, "SIGHUP")))
    try:
        yield
    finally:
        if app.state.handle_sighup:
            loop.remove_signal_handler(signal.SIGHUP)
        await runtime.stop()


async def _reload_quietly(runtime: ServiceRuntime, trigger: str) -> None:
    try:
        await runtime.reload(trigger)
    except ReloadError:
        pass  # logged by the runtime; the previous set keeps serving


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


# -- the routes ------------------------------------------------------------------------------------------------

_Endpoint = Callable[..., Awaitable[Response]]
_ROUTES: list[tuple[str, _Endpoint, dict[str, Any]]] = []  # (path, handler, add_api_route's options), in order


def _route(method: str, path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
    """Register the decorated handler for ``method path``; :func:`create_app` adds it to every app. The route is
    named after the handler without its underscore (``_score``: ``score``, the stem of its OpenAPI operation id)."""

    def register(endpoint: _Endpoint) -> _Endpoint:
        _ROUTES.append((path, endpoint, {"methods": [method], "name": endpoint.__name__.lstrip("_"), **options}))
        return endpoint

    return register


@_route("POST", "/v1/score", summary="Score one record, or {'records': [...]}, and store the results", tags=["scoring"])
async def _score(request: Request) -> Response:
    runtime = _runtime(request)
    settings = runtime.settings
    body = await _read_body(request, settings.max_body_bytes)
    loop = asyncio.get_running_loop()
    # a large body is parsed and checked on a thread, so that health checks and metrics keep answering meanwhile;
    # a small one costs less than the hand-off to a thread and back (tens of microseconds against hundreds)
    if len(body) <= _INLINE_BYTES:
        records, ids, single = _request_records(body, settings.id_field, settings.max_records)
    else:
        records, ids, single = await loop.run_in_executor(
            None, _request_records, body, settings.id_field, settings.max_records
        )
    del body
    try:
        documents = await runtime.score(records, ids)
    except QueueFull as exc:
        runtime.metrics.rejected.labels("queue_full").inc()
        return _error(request, 503, str(exc), headers={"Retry-After": "1"})
    except ResultRefused as exc:
        runtime.metrics.rejected.labels("refused").inc()
        return _error(request, 422, str(exc))
    except ResultNotStored as exc:
        runtime.metrics.rejected.labels("store").inc()
        return _error(request, 503, str(exc), headers={"Retry-After": "5"})
    texts = documents.json()
    if len(texts) <= _INLINE_RECORDS:
        content = _response_text(texts, single)
    else:
        content = await loop.run_in_executor(None, _response_text, texts, single)
    return Response(content, media_type=JSON)


@_route("POST", "/v1/outcomes", summary="Store outcomes: one, or {'outcomes': [...]}", tags=["evaluation"])
async def _outcomes(request: Request) -> Response:
    runtime = _runtime(request)
    settings = runtime.settings
    body = await _read_body(request, settings.max_body_bytes)
    loop = asyncio.get_running_loop()
    outcomes = await loop.run_in_executor(None, request_outcomes, body, settings.id_field, settings.max_records)
    del body
    try:
        await runtime.store_outcomes(outcomes)
    except ResultRefused as exc:
        return _error(request, 422, str(exc))
    except ResultNotStored as exc:
        return _error(request, 503, str(exc), headers={"Retry-After": "5"})
    return JSONResponse(outcomes_answer(outcomes, settings.id_field))


@_route(
    "GET",
    "/report",
    summary="The evaluation report of the service's store (the page mlsm report writes)",
    tags=["evaluation"],
    response_class=HTMLResponse,
)
async def _report(
    request: Request,
    as_of: Annotated[
        Literal["decision", "first", "latest"],
        Query(description="which score counts: the newest at or before the decision, the first, the current"),
    ] = "decision",
    key: Annotated[str, Query(description="the result key holding the score")] = "score",
    mature_days: Annotated[float | None, Query(ge=0, description="judge only decisions at least N days old")] = None,
    since: Annotated[str | None, Query(description="only outcomes decided at or after (ISO 8601 or unix s)")] = None,
    until: Annotated[str | None, Query(description="only outcomes decided before (ISO 8601 or unix s)")] = None,
    model: Annotated[list[str] | None, Query(description="a model to evaluate, NAME@VERSION (repeat)")] = None,
    reference: Annotated[str | None, Query(description="the drift table's reference run (with current)")] = None,
    current: Annotated[str | None, Query(description="the run compared with the reference")] = None,
) -> Response:
    runtime = _runtime(request)
    options = report_options(
        as_of=as_of,
        key=key,
        models=model,
        since=since,
        until=until,
        mature_days=mature_days,
        reference=reference,
        current=current,
    )
    loop = asyncio.get_running_loop()
    # the join and the statistics read the whole store: on a thread, one report at a time, so scoring goes on
    async with request.app.state.reports:
        try:
            page = await loop.run_in_executor(None, functools.partial(report_page, runtime.store.url, **options))
        except StoreError as exc:
            return _error(request, 503, f"the report cannot read the store: {exc}")
        except RunError as exc:  # a drift run that is not in the store, or whose profile cannot be read
            return _error(request, 422, str(exc))
    return HTMLResponse(page)


@_route("GET", "/favicon.ico", include_in_schema=False)
async def _favicon() -> Response:
    # a browser showing /report asks for it: no icon, and no 404 in its console or in the access log
    return Response(status_code=204)


@_route("GET", "/v1/models", summary="The live model set", tags=["models"])
async def _models(request: Request) -> Response:
    return JSONResponse(_models_body(_runtime(request)))


@_route("GET", "/v1/results/{id:path}", summary="An id's current result document", tags=["results"])
async def _results(request: Request, id: str, history: bool = False) -> Response:
    runtime = _runtime(request)
    id_field = runtime.settings.id_field
    id = _requested_id(id, id_field)
    loop = asyncio.get_running_loop()
    if history:
        documents = await loop.run_in_executor(None, runtime.store.history, id)
        if not documents:
            return _error(request, 404, f"no results for {id_field} {id!r}")
        texts = ",".join(encode(document) for document in documents)
        return Response(f'{{"id":{encode_value(id)},"documents":[{texts}]}}', media_type=JSON)
    document = await loop.run_in_executor(None, runtime.store.current, id)
    if document is None:
        return _error(request, 404, f"no results for {id_field} {id!r}")
    return Response(encode(document), media_type=JSON)


@_route("POST", "/v1/admin/reload", summary="Reload the models; swap only if every preflight passes", tags=["admin"])
async def _reload(request: Request) -> Response:
    runtime = _runtime(request)
    try:
        previous, fresh = await runtime.reload("api")
    except ReloadError as exc:
        live = runtime.live.current
        return JSONResponse(
            {
                "detail": f"reload refused: {exc}; generation {live.generation} keeps serving",
                "reasons": exc.reasons,
                "live": {"generation": live.generation, "source_hash": live.source_hash},
                "request_id": _request_id(request),
            },
            status_code=409,
        )
    body: dict[str, Any] = {
        "reloaded": True,
        "previous": {"generation": previous.generation, "source_hash": previous.source_hash},
        "live": fresh.description,
    }
    notes = settings_changes(previous, fresh)
    if notes:
        body["notes"] = notes
    return JSONResponse(body)


@_route("GET", "/healthz", summary="The process is alive", tags=["operations"])
async def _healthz() -> Response:
    return JSONResponse({"status": "ok"})


@_route("GET", "/readyz", summary="Models loaded and store reachable", tags=["operations"])
async def _readyz(request: Request) -> Response:
    runtime = _runtime(request)
    reasons = []
    if runtime.stopping or not runtime.started:
        reasons.append("shutting down" if runtime.stopping else "starting")
    else:
        problem = await runtime.store_ready()
        if problem:
            reasons.append(problem)
    live = runtime.live.current
    body: dict[str, Any] = {"status": "ready" if not reasons else "not ready", "generation": live.generation}
    if reasons:
        body["reasons"] = reasons
    return JSONResponse(body, status_code=200 if not reasons else 503)


@_route("GET", "/metrics", summary="Prometheus metrics", tags=["operations"])
async def _metrics(request: Request) -> Response:
    runtime = _runtime(request)
    live = runtime.live.current
    content, media_type = runtime.metrics.render(
        queue_depth=runtime.writer.depth, generation=live.generation, stuck=live.engine.stuck_calls()
    )
    return Response(content, media_type=media_type)


@_route("GET", "/openapi.json", include_in_schema=False)
async def _openapi(request: Request) -> Response:
    app, runtime = request.app, _runtime(request)
    live = runtime.live.current
    cache: dict[int, dict[str, Any]] = app.state.openapi
    document = cache.get(live.generation)
    if document is None:
        cache.clear()
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        add_model_schemas(document, live, id_field=runtime.settings.id_field, api_key=runtime.keys.has(SCORING))
        cache[live.generation] = document
    return JSONResponse(document)


# -- errors as {"detail": ..., "request_id": ...} ---------------------------------------------------------------


async def _bad_request(request: Request, exc: RequestError) -> Response:
    return _error(request, exc.status, exc.message)


async def _bad_parameter(request: Request, exc: RequestValidationError) -> Response:
    return _error(request, 422, _validation_message(exc))


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        message = (
            f"no endpoint {request.url.path!r}: the endpoints are /v1/score, /v1/outcomes, /v1/models, "
            "/v1/results/{id}, /report"
        )
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return _error(request, exc.status_code, message, headers=dict(exc.headers or {}))


def _models_body(runtime: ServiceRuntime) -> dict[str, Any]:
    live: ServingSet = runtime.live.current
    body = {"live": live.description, "last_reload": runtime.live.last_reload, "pid": os.getpid()}
    return body


# -- the request body ------------------------------------------------------------------------------------------


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) one over ``limit`` bytes before reading past the limit."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RequestError(400, f"invalid Content-Length header {declared!r}") from None
        if size > limit:
            raise RequestError(413, f"body of {size} bytes is over the limit of {limit} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise RequestError(413, f"body is over the limit of {limit} bytes")
    except ClientDisconnect:
        # nobody reads the answer; 499 (as proxies count it) keeps it apart from errors in the access log
        raise RequestError(499, "the connection closed before the body arrived") from None
    return bytes(body)


def _request_records(body: bytes, id_field: str, max_records: int) -> tuple[list[dict[str, Any]], list[str], bool]:
    """A request body's records, their ids and whether it was a single record, every record checked: ``RequestError``
    (400/413/422) naming the problem, so that a record that cannot be scored or stored never joins a group."""
    records, single = _parse_records(body, id_field)
    if len(records) > max_records:
        raise RequestError(
            413, f"{len(records)} records is over the limit of {max_records} a request: send them in several requests"
        )
    ids = []
    for i, record in enumerate(records):
        where = "the record" if single else f"records[{i}]"
        check_text(record, where)
        ids.append(record_id(record, id_field, where))
    return records, ids, single


def _response_text(texts: list[str], single: bool) -> str:
    return texts[0] if single else '{"results":[' + ",".join(texts) + "]}"


def _parse_records(body: bytes, id_field: str) -> tuple[list[dict[str, Any]], bool]:
    """The records of a body and whether it was a single record; ``RequestError`` 400/422 naming the problem."""
    value = decode_json(body)
    if not isinstance(value, dict):
        raise RequestError(422, f'expected a JSON object (one record) or {{"records": [...]}}, got {json_kind(value)}')
    if len(value) == 1 and "records" in value and id_field != "records":
        records = value["records"]
        if not isinstance(records, list):
            raise RequestError(422, f'"records" must be a list of JSON objects, got {json_kind(records)}')
        if not records:
            raise RequestError(422, '"records" is empty: send at least one record')
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise RequestError(422, f"records[{i}] must be a JSON object (one record), got {json_kind(record)}")
        return records, False
    return [value], True


def _requested_id(text: str, id_field: str) -> str:
    """An id asked for in a URL, by the rule it was stored with; ``RequestError`` 422 when it cannot be one."""
    try:
        return normalize_id(text)
    except InvalidId as exc:
        raise RequestError(422, f"the {id_field!r} asked for {exc.reason}") from None


def _request_id(request: Request) -> str:
    return str(request.scope.get("mlsm.request_id", ""))


def _error(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"detail": message, "request_id": _request_id(request)}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    """A request validation error (a bad query or path parameter) as one sentence naming the parameter and value."""
    parts = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        where = f"{location[0]} parameter {location[-1]!r}" if len(location) >= 2 else "parameter"
        hint = "; use true or false" if error.get("type") == "bool_parsing" else ""
        parts.append(f"invalid {where} = {error.get('input')!r}: {str(error.get('msg', 'invalid')).lower()}{hint}")
    return "; ".join(parts) or "invalid request parameters"


# -- the edge: request ids, auth, metrics, access log ----------------------------------------------------------


class _Edge:
    """Outermost ASGI middleware: request id, keys and the loopback rule for requests let in without one, JSON-only
    bodies, one metric sample and one access log line per request, and the 500 of an exception a route lets out."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], runtime: ServiceRuntime, routes: list[Any]
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.routes = routes
        self.score_route = next(r for r in routes if getattr(r, "endpoint", None) is _score)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or secrets.token_hex(8)
        scope["mlsm.request_id"] = request_id
        header = (b"x-request-id", request_id.encode("ascii"))
        status = 500
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        path: str = scope["path"]
        try:
            refusal = self._refusal(scope, path)
            if refusal is not None:
                code, problem = refusal
                headers = {"WWW-Authenticate": 'Bearer realm="mlsm"'} if code == 401 else None
                refused = JSONResponse({"detail": problem, "request_id": request_id}, code, headers=headers)
                await refused(scope, receive, send_with_id)
            elif path == "/v1/score" and scope["method"] == "POST":
                # the hot path straight to its handler: FastAPI's routing, dependency solving and middleware cost
                # more than the rest of the request's HTTP handling, and this route uses none of them
                scope["route"] = self.score_route
                request = Request(scope, receive, send_with_id)
                try:
                    response = await _score(request)
                except RequestError as exc:
                    response = await _bad_request(request, exc)
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception as exc:
            self.runtime.log.event(
                "error",
                "error",
                request_id=request_id,
                path=path,
                error=f"{type(exc).__name__}: {exc}",
                traceback="".join(traceback.format_exception(exc))[-4000:],
            )
            if not responded:  # else the client sees a cut response: the server closes the connection
                detail = f"internal error: {type(exc).__name__}: {exc}"
                await JSONResponse({"detail": detail, "request_id": request_id}, 500)(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            endpoint = self._endpoint(scope)
            method = scope["method"]
            self.runtime.metrics.observe_request(endpoint, method, status, seconds)
            client = scope.get("client")
            self.runtime.log.event(
                "request",
                request_id=request_id,
                method=method,
                path=path,
                status=status,
                ms=round(seconds * 1000, 2),
                client=client[0] if client else None,
            )

    def _refusal(self, scope: Scope, path: str) -> tuple[int, str] | None:
        """Why the request is refused before the app sees it, as (status, detail), or None."""
        if path in _OPEN_PATHS or not (path.startswith("/v1/") or path in _GUARDED_PATHS):
            return None
        headers = _headers(scope)
        keys = self.runtime.keys
        keyed = False
        if path.startswith("/v1/admin/"):
            if keys.has(ADMIN):
                token, problem = _bearer(headers, "admin key")
                if token is None:
                    return 401, problem
                if not keys.matches(ADMIN, token):
                    if keys.has(SCORING) and keys.matches(SCORING, token):
                        return 403, "this key may score but not administer: /v1/admin/... needs an admin key"
                    return 401, "invalid admin key"
                keyed = True
            elif not _loopback_client(scope):
                return 403, (
                    "no admin key is configured (--admin-key-file or MLSM_ADMIN_KEY): "
                    "/v1/admin/... answers loopback clients only"
                )
        if not keyed and keys.has(SCORING):
            token, problem = _bearer(headers, "API key")
            if token is None:
                return 401, problem
            if not (keys.matches(SCORING, token) or keys.matches(ADMIN, token)):
                return 401, "invalid API key"
            keyed = True
        if not keyed:
            foreign = _foreign_origin(headers)
            if foreign is not None:
                return 403, foreign
        if scope["method"] == "POST":
            return _not_json(headers)
        return None

    def _endpoint(self, scope: Scope) -> str:
        """The route template without converters, e.g. ``/v1/results/{id}`` (bounded label values), or
        'unmatched'."""
        route = scope.get("route")
        if route is None:
            route = next((r for r in self.routes if r.matches(scope)[0] is Match.FULL), None)
        if route is None:
            return "unmatched"
        return _CONVERTER.sub(r"{\1}", str(getattr(route, "path", "unmatched")))


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name (the first of a repeated one)."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        headers.setdefault(name, value)
    return headers


def _bearer(headers: dict[bytes, bytes], what: str) -> tuple[bytes | None, str]:
    """The bearer token of the Authorization header, else None and what is wrong with the header."""
    value = headers.get(b"authorization")
    if value is None:
        return None, f"missing {what}: send the header 'Authorization: Bearer <key>'"
    scheme, _, token = value.partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return None, "the Authorization header must be 'Bearer <key>'"
    return token.strip(), ""


def _loopback_client(scope: Scope) -> bool:
    client = scope.get("client")
    return client is not None and is_loopback(str(client[0]))


def _foreign_origin(headers: dict[bytes, bytes]) -> str | None:
    """Why a request let in without a key is refused: a ``Host`` or ``Origin`` that is not this machine (a web page
    reaching the service through DNS rebinding, or posting to it from another site); None when both are loopback."""
    for name in (b"host", b"origin"):
        raw = headers.get(name)
        if raw is None:
            continue
        key = (name, raw)
        try:
            problem = _FOREIGN[key]
        except KeyError:
            if len(_FOREIGN) >= _FOREIGN_SIZE:
                _FOREIGN.clear()
            problem = _FOREIGN[key] = _foreign(name, raw)
        if problem is not None:
            return problem
    return None


#: What :func:`_foreign` said of the header values seen lately (a client sends the same ``Host`` every time; parsing
#: it cost 5 µs a request): at most this many, then forgotten together.
_FOREIGN_SIZE = 256
_FOREIGN: dict[tuple[bytes, bytes], str | None] = {}


def _foreign(name: bytes, raw: bytes) -> str | None:
    """Why the ``Host`` or ``Origin`` header value ``raw`` is not this machine, or None."""
    text = raw.decode("latin-1")
    try:
        host = urlsplit(text if name == b"origin" else f"//{text}").hostname
    except ValueError:
        host = None
    if host is None or not is_loopback(host):
        return (
            f"{name.decode().capitalize()} {text!r} is not this machine: without an API key the service answers "
            "only requests naming a loopback host (localhost, 127.0.0.1, ::1); configure a key to serve others"
        )
    return None


def _not_json(headers: dict[bytes, bytes]) -> tuple[int, str] | None:
    """415 unless a POST's body (if it has one) is declared ``application/json`` (optionally with charset=utf-8)."""
    length = headers.get(b"content-length")
    if length is not None and length.strip() == b"0" and b"transfer-encoding" not in headers:
        return None  # no body: nothing to declare
    if length is None and b"transfer-encoding" not in headers:
        return None
    declared = headers.get(b"content-type", b"").decode("latin-1")
    media, *parameters = (part.strip().lower() for part in declared.split(";"))
    charsets = [p.partition("=")[2].strip('" ') for p in parameters]
    if media == JSON and all(p.startswith("charset=") for p in parameters) and set(charsets) <= {"utf-8", "utf8"}:
        return None
    got = f"got {declared!r}" if declared else "no Content-Type was sent"
    return 415, f"the body must be JSON: send 'Content-Type: application/json' ({got})"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, raw in scope.get("headers", ()):
        if name == b"x-request-id":
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                return None
            return text if _REQUEST_ID.match(text) else None
    return None
