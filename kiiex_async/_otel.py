"""OpenTelemetry spans for API calls and swap steps: the optional ``kiiex_async[otel]`` extra.

This module owns everything kiiex_async does with OpenTelemetry.  It never loads
``opentelemetry`` itself: a tracer provider can only have been configured by code that
imported ``opentelemetry.trace``, so while that module is not loaded (the API is not
installed, or nobody uses it) a call costs one dictionary lookup and one context-variable
read, nothing else.  With the API loaded but no SDK configured (the default proxy or no-op
provider) nothing is traced either, and no tracer is asked for.

With a provider configured:

* each :meth:`Pipeline.call <kiiex_async._pipeline.Pipeline.call>` is one ``CLIENT`` span
  named ``kiiex <Method>`` (its retries are counted on it, not spanned apart), with
  ``kiiex.method``, ``kiiex.transport`` (``"http"``), ``kiiex.write``,
  ``http.request.method``, ``kiiex.attempts``, ``http.response.status_code`` and, on
  failure, ``kiiex.errorcode`` (AlphaPoint's) and ``error.type`` with an error status;
* each request the stream sends for someone (:meth:`Stream.call
  <kiiex_async.stream.Stream.call>`, its login and its subscriptions; not its liveness
  ``Ping``) is the same span with ``kiiex.transport`` ``"ws"`` and no ``http.*``
  attribute;
* each step of a swap run is one span named ``kiiex swap <step>``, with ``kiiex.swap.id``,
  ``kiiex.swap.step``, ``kiiex.swap.step_number``, ``kiiex.swap.state_from`` and
  ``kiiex.swap.state`` (the state reached); the step's calls are its children.

Spans never carry a payload, a message or an exception text (which may quote an answer),
let alone a secret: only the names, numbers and classes listed above.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import functools
import inspect
import sys
from collections.abc import Callable, Coroutine, Iterator
from importlib import metadata
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["record_attempt", "record_status", "swap_step", "traced_call", "traced_ws_call"]

P = ParamSpec("P")
R = TypeVar("R")

_TRACE_MODULE = "opentelemetry.trace"
_modules = sys.modules
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


class _Record(Protocol):
    @property
    def swap_id(self) -> str: ...

    @property
    def state(self) -> enum.Enum: ...


class _Run(Protocol):
    """What :func:`swap_step` reads of a swap run (the workflow's runner)."""

    @property
    def record(self) -> _Record: ...


class _Call:
    """The span of one call in flight, and what its attempts found."""

    __slots__ = ("attempts", "http", "status")

    def __init__(self, http: bool) -> None:
        self.attempts = 1
        #: An HTTP call (a socket call has no HTTP status to report).
        self.http = http
        self.status: int | None = None


#: What a traced callable's arguments say of its span: the method, the opening attributes
#: and whether the call is HTTP.
_Describe = Callable[[tuple[Any, ...], dict[str, Any]], tuple[str, dict[str, str | bool], bool]]


_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "kiiex_async_otel_call", default=None
)
# The last provider seen and its tracer (None: the proxy or no-op provider of "no SDK").
_cached: tuple[object, Tracer | None] = (None, None)


def _tracer() -> Tracer | None:
    """The configured tracer, or ``None`` when OpenTelemetry is absent or has no SDK."""
    trace = _modules.get(_TRACE_MODULE)
    if trace is None:
        return None
    global _cached
    provider = trace.get_tracer_provider()
    seen, tracer = _cached
    if provider is seen:
        return tracer
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        tracer = None
    else:
        tracer = provider.get_tracer("kiiex_async", _version())
    _cached = (provider, tracer)
    return tracer


def _version() -> str | None:
    try:
        return metadata.version("kiiex_async")
    except metadata.PackageNotFoundError:  # pragma: no cover - a bare source tree
        return None


def traced_call(
    call: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Decorate ``Pipeline.call``: one span per call, its retries counted on it."""
    return _traced_by(_describe_http, call)


def _describe_http(
    args: tuple[Any, ...], options: dict[str, Any]
) -> tuple[str, dict[str, str | bool], bool]:
    method = str(args[1] if len(args) > 1 else options["method"])
    attributes: dict[str, str | bool] = {
        "kiiex.method": method,
        "kiiex.transport": "http",
        "kiiex.write": bool(options.get("write", False)),
        "http.request.method": str(options.get("http", "POST")),
    }
    return method, attributes, True


def traced_ws_call(
    is_write: Callable[[str], bool], *, method_at: int
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Decorate a request sent on the stream's socket: one span per request, like HTTP's.

    The method is the positional argument at ``method_at`` (``self`` counted) or the
    ``method`` keyword; ``is_write`` says whether it is sent once.  A second attempt (a
    read asked again on a new socket) is counted with :func:`record_attempt`.
    """

    def describe(
        args: tuple[Any, ...], options: dict[str, Any]
    ) -> tuple[str, dict[str, str | bool], bool]:
        method = str(args[method_at] if len(args) > method_at else options["method"])
        attributes: dict[str, str | bool] = {
            "kiiex.method": method,
            "kiiex.transport": "ws",
            "kiiex.write": is_write(method),
        }
        return method, attributes, False

    def decorate(call: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        return _traced_by(describe, call)

    return decorate


def _traced_by(
    describe: _Describe, call: Callable[P, Coroutine[Any, Any, R]]
) -> Callable[P, Coroutine[Any, Any, R]]:
    """``call`` with one span per call, described by ``describe``.

    The wrapper is a plain function returning ``call``'s own coroutine when nothing is
    traced, so an untraced call costs one lookup and no extra coroutine.
    """

    @functools.wraps(call)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        if _TRACE_MODULE not in _modules:
            return call(*args, **kwargs)
        tracer = _tracer()
        if tracer is None:
            return call(*args, **kwargs)
        method, attributes, http = describe(args, kwargs)
        return _traced(tracer, functools.partial(call, *args, **kwargs), method, attributes, http)

    # Python 3.12+: still a coroutine function to inspect.iscoroutinefunction().
    mark = getattr(inspect, "markcoroutinefunction", None)
    return mark(wrapper) if mark is not None else wrapper


async def _traced(
    tracer: Tracer,
    start: Callable[[], Coroutine[Any, Any, R]],
    method: str,
    attributes: dict[str, str | bool],
    http: bool,
) -> R:
    from opentelemetry.trace import SpanKind  # loaded: _tracer() saw it

    state = _Call(http)
    with tracer.start_as_current_span(
        f"kiiex {method}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        token = _CALL.set(state)
        try:
            result = await start()
        except BaseException as exc:
            _failed(span, exc, state)
            raise
        finally:
            _CALL.reset(token)
            span.set_attribute("kiiex.attempts", state.attempts)
        if state.status is not None:
            span.set_attribute("http.response.status_code", state.status)
        return result


def _failed(span: Span, exc: BaseException, state: _Call) -> None:
    """Mark ``span`` failed by ``exc``: its class, HTTP status and errorcode, no text."""
    if state.http:
        status = getattr(exc, "status", None)
        if isinstance(status, int) and not isinstance(status, bool):
            state.status = status
        if state.status is not None:
            span.set_attribute("http.response.status_code", state.status)
    errorcode = getattr(exc, "errorcode", None)
    if isinstance(errorcode, int) and not isinstance(errorcode, bool):
        span.set_attribute("kiiex.errorcode", errorcode)
    _mark_error(span, exc)


def _mark_error(span: Span, exc: BaseException) -> None:
    """Set ``span``'s error status and ``error.type`` to ``exc``'s class (never its text)."""
    from opentelemetry.trace import Status, StatusCode

    name = type(exc).__name__
    span.set_attribute("error.type", name)
    span.set_status(Status(StatusCode.ERROR, name))


def record_attempt() -> None:
    """Count one more attempt (a retry) on the traced call in flight (if any)."""
    state = _CALL.get()
    if state is not None:
        state.attempts += 1


def record_status(status: int) -> None:
    """Note the HTTP status of the current attempt on the traced call (if any)."""
    state = _CALL.get()
    if state is not None:
        state.status = status


def swap_step(run: _Run, step: enum.IntEnum | None) -> contextlib.AbstractContextManager[None]:
    """A span around one step of ``run`` (a no-op context when nothing is traced)."""
    if _TRACE_MODULE not in _modules:
        return _NOTHING
    tracer = _tracer()
    if tracer is None:
        return _NOTHING
    return _step_span(tracer, run, step)


@contextlib.contextmanager
def _step_span(tracer: Tracer, run: _Run, step: enum.IntEnum | None) -> Iterator[None]:
    record = run.record
    label = step.name.lower() if step is not None else record.state.name.lower()
    attributes: dict[str, str | int] = {
        "kiiex.swap.id": record.swap_id,
        "kiiex.swap.step": label,
        "kiiex.swap.state_from": str(record.state.value),
    }
    if step is not None:
        attributes["kiiex.swap.step_number"] = int(step)
    with tracer.start_as_current_span(
        f"kiiex swap {label}",
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except BaseException as exc:
            _mark_error(span, exc)
            raise
        finally:
            span.set_attribute("kiiex.swap.state", str(run.record.state.value))
