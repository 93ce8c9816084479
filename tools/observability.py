"""Logging and error reporting for every vinbot process.

Each entrypoint calls `configure_logging` once and, when `SENTRY_DSN` is set,
`init_sentry`. Both apply the same redaction rules, so a VIN shows only its last
6 characters and no token, key, password or URL userinfo leaves the process::

    configure_logging(level="INFO", env=settings.env)   # text locally, JSON lines in prod
    init_sentry(dsn, env=settings.env, release=git_sha)  # False and a no-op without a DSN

    with log_context(request_id=rid, conversation_id="tg:42"):
        logger.info("decoding %s", vin)   # ... request_id=rid ... "***********004352"

The ids live in context variables, so each asyncio task (which runs in a copy of
its parent's context) sees its own ids and nothing leaks between concurrent requests.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, TextIO, cast

import sentry_sdk
from sentry_sdk.transport import Transport

from tools.domain.vin import mask_vin

if TYPE_CHECKING:
    from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint, Log

__all__ = [
    "CONTEXT_FIELDS",
    "FILTERED",
    "REDACTED",
    "JsonFormatter",
    "LogContextFilter",
    "RedactingFilter",
    "TextFormatter",
    "bind_context",
    "configure_logging",
    "current_context",
    "init_sentry",
    "log_context",
    "mask_vin",
    "redact",
    "scrub_breadcrumb",
    "scrub_event",
    "scrub_log",
]

REDACTED = "[REDACTED]"
"""What a secret found inside a string is replaced with."""

FILTERED = "[Filtered]"
"""What the value of a sensitive key (a header, a `password` field) is replaced with."""

CONTEXT_FIELDS = ("request_id", "conversation_id", "tool")
"""The per-request ids every log record carries (None when unset)."""

_VIN_MASK = "*" * 11

# ---------------------------------------------------------------- redaction rules

# Order matters: secrets first (a token can contain a 17-character run), VINs last.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:]*(?::[^\s/@]*)?@")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*")
# Telegram bot tokens are `<bot id>:<35 chars>` and sit right after "bot" in API URLs.
_TELEGRAM_TOKEN = re.compile(r"(?<![0-9])[0-9]{6,}:[A-Za-z0-9_-]{30,}")
_STRIPE_KEY = re.compile(r"(?<![A-Za-z0-9])(sk_live_|sk_test_|rk_live_|rk_test_|whsec_)[A-Za-z0-9+/=]+")
_OPENAI_STYLE_KEY = re.compile(r"(?<![A-Za-z0-9])(sk-)[A-Za-z0-9_-]{16,}")
_SENSITIVE_NAME_PATTERN = r"[a-z0-9_-]*(?:password|passwd|secret|token|api[_-]?key)"
_KEY_VALUE = re.compile(rf"(?i)\b({_SENSITIVE_NAME_PATTERN}|key)=[^&\s\"'<>;,]+")
# `{'password': 'hunter2'}` as it appears when a dict is formatted into a message.
_QUOTED_KEY_VALUE = re.compile(rf"(?i)([\"'])({_SENSITIVE_NAME_PATTERN})\1(\s*:\s*)([\"'])[^\"']*\4")
_VIN = re.compile(r"(?i)(?<![a-z0-9])[A-HJ-NPR-Z0-9]{11}([A-HJ-NPR-Z0-9]{6})(?![a-z0-9])")

_SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "x_api_key",
        "x_telegram_bot_api_secret_token",
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "client_secret",
        "private_key",
        "bot_token",
        "telegram_bot_token",
        "openai_api_key",
        "sentry_dsn",
    }
)


def redact(text: str) -> str:
    """Remove secrets from `text` and mask every VIN in it.

    Secrets are Telegram bot tokens, `Bearer` tokens, `sk-` API keys, Stripe
    `sk_live_`/`sk_test_`/`whsec_` keys, `password=`/`token=`/`api_key=`/`key=`
    query or form values and the userinfo of URLs (`postgresql://user:pass@`).
    A VIN is any 17-character run of the VIN alphabet (either case) standing on
    its own; it keeps its last 6 characters.

    Args:
        text: Any text bound for a log line or an error report.

    Returns:
        The text with secrets replaced by `[REDACTED]` and VINs masked.
    """
    text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    text = _TELEGRAM_TOKEN.sub(REDACTED, text)
    text = _STRIPE_KEY.sub(rf"\1{REDACTED}", text)
    text = _OPENAI_STYLE_KEY.sub(rf"\1{REDACTED}", text)
    text = _KEY_VALUE.sub(rf"\1={REDACTED}", text)
    text = _QUOTED_KEY_VALUE.sub(rf"\1\2\1\3\4{REDACTED}\4", text)
    return _VIN.sub(rf"{_VIN_MASK}\1", text)


def _is_sensitive_key(key: str) -> bool:
    # WSGI spells headers HTTP_AUTHORIZATION; HTTP spells them X-Api-Key.
    name = key.lower().replace("-", "_").removeprefix("http_")
    return name in _SENSITIVE_KEYS


# ---------------------------------------------------------------- context ids

_REQUEST_ID: ContextVar[str | None] = ContextVar("vinbot_request_id", default=None)
_CONVERSATION_ID: ContextVar[str | None] = ContextVar("vinbot_conversation_id", default=None)
_TOOL: ContextVar[str | None] = ContextVar("vinbot_tool", default=None)


def _pairs(
    request_id: str | None, conversation_id: str | None, tool: str | None
) -> list[tuple[ContextVar[str | None], str]]:
    given = ((_REQUEST_ID, request_id), (_CONVERSATION_ID, conversation_id), (_TOOL, tool))
    return [(var, value) for var, value in given if value is not None]


@contextmanager
def log_context(
    *, request_id: str | None = None, conversation_id: str | None = None, tool: str | None = None
) -> Iterator[None]:
    """Tag every log record inside the block with the given ids.

    Ids left as None keep their current value, so contexts nest: a tool call inside
    a request adds `tool` and keeps `request_id`. The previous values come back on exit.

    Args:
        request_id: The id of the HTTP request, Telegram update or Celery task.
        conversation_id: The namespaced thread id (`tg:<chat_id>`, `api:<id>`).
        tool: The name of the agent tool being run.

    Yields:
        Nothing; the ids apply for the duration of the `with` block.
    """
    tokens = [(var, var.set(value)) for var, value in _pairs(request_id, conversation_id, tool)]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind_context(
    *, request_id: str | None = None, conversation_id: str | None = None, tool: str | None = None
) -> None:
    """Set ids for the rest of the current context (an asyncio task, a thread).

    Use it at the top of a task that owns its whole context; prefer `log_context`
    anywhere the ids must be restored afterwards. Ids left as None are unchanged.

    Args:
        request_id: The id of the HTTP request, Telegram update or Celery task.
        conversation_id: The namespaced thread id (`tg:<chat_id>`, `api:<id>`).
        tool: The name of the agent tool being run.
    """
    for var, value in _pairs(request_id, conversation_id, tool):
        var.set(value)


def current_context() -> dict[str, str | None]:
    """Return the ids currently bound, keyed by `CONTEXT_FIELDS` (None when unset)."""
    return {
        "request_id": _REQUEST_ID.get(),
        "conversation_id": _CONVERSATION_ID.get(),
        "tool": _TOOL.get(),
    }


# ---------------------------------------------------------------- logging


class LogContextFilter(logging.Filter):
    """Add `request_id`, `conversation_id` and `tool` from the context to each record.

    A value passed explicitly through `extra=` wins over the context.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the context ids to `record`; never drops it."""
        for name, value in current_context().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class RedactingFilter(logging.Filter):
    """Rewrite each record so its message, traceback and stack carry no secrets or whole VINs.

    The message is formatted once (`msg % args`), redacted, and stored back with no
    args, so no handler or formatter downstream can see the raw values.
    """

    _exception_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact `record` in place; never drops it."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # A bad format string: keep the template and the arguments' text, both redacted.
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exception_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    """Format records for people: time, level, logger, message, then any context ids."""

    def __init__(self) -> None:
        super().__init__(
            fmt="%(asctime)s %(levelname)-8s %(name)s: %(message)s%(context_suffix)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        )

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one readable line (plus a traceback when present)."""
        ids = [f"{name}={value}" for name in CONTEXT_FIELDS if (value := getattr(record, name, None))]
        record.context_suffix = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """Format records as JSON lines for log collectors.

    Keys: `ts` (ISO 8601, UTC), `level`, `logger`, `message`, `request_id`,
    `conversation_id`, `tool`, `exc` (the formatted traceback, or null) and, only
    when the call asked for it, `stack`.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one JSON object on one line."""
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **{name: getattr(record, name, None) for name in CONTEXT_FIELDS},
            "exc": record.exc_text or None,
        }
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


class _VinbotHandler(logging.StreamHandler[TextIO]):
    """The one root handler `configure_logging` owns; its type marks it for replacement."""


def configure_logging(
    *,
    level: str = "INFO",
    fmt: Literal["auto", "text", "json"] = "auto",
    env: str = "dev",
    stream: TextIO | None = None,
) -> None:
    """Configure stdlib logging for this process; safe to call again.

    Installs one root handler that adds the context ids, redacts secrets and VINs,
    and writes readable text or JSON lines. A second call replaces that handler
    (so the level or format can change) instead of adding another; handlers
    installed by others (pytest, Sentry) are left alone. `httpx` and `httpcore`
    are held at WARNING because Telegram bot tokens appear in their request URLs.

    Args:
        level: The root level name (`DEBUG`, `INFO`, ...).
        fmt: `json`, `text`, or `auto` (JSON when `env` is `prod`, text otherwise).
        env: The deployment environment (`dev`, `test`, `prod`).
        stream: Where to write; standard error when None.

    Raises:
        ValueError: If `level` is not a logging level name.
    """
    use_json = fmt == "json" or (fmt == "auto" and env == "prod")
    handler = _VinbotHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(LogContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())

    root = logging.getLogger()
    root.setLevel(level.upper())
    for old in [h for h in root.handlers if isinstance(h, _VinbotHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# ---------------------------------------------------------------- Sentry


def _scrub(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        scrubbed: dict[object, object] = {}
        for key, item in value.items():
            if isinstance(key, str) and _is_sensitive_key(key) and item is not None:
                scrubbed[key] = FILTERED
            else:
                scrubbed[redact(key) if isinstance(key, str) else key] = _scrub(item)
        return scrubbed
    if isinstance(value, list | tuple):
        # Some integrations send headers as [name, value] pairs.
        if len(value) == 2 and isinstance(value[0], str) and _is_sensitive_key(value[0]):
            items: list[object] = [value[0], FILTERED]
        else:
            items = [_scrub(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def scrub_event(event: Event, hint: Hint) -> Event:
    """Redact a Sentry event before it is sent (`before_send`, `before_send_transaction`).

    Walks the whole event (message, exception values, stack frame variables,
    request data, headers and query string, extra, contexts, breadcrumbs) and
    applies `redact` to every string; values under sensitive keys such as
    `Authorization`, `Cookie`, `X-Api-Key` and `X-Telegram-Bot-Api-Secret-Token`
    become `[Filtered]`.

    Args:
        event: The serialized event.
        hint: Sentry's hint (the original exception, log record); unused.

    Returns:
        A scrubbed copy of the event.
    """
    return cast("Event", _scrub(event))


def scrub_breadcrumb(crumb: Breadcrumb, hint: BreadcrumbHint) -> Breadcrumb:
    """Redact a Sentry breadcrumb as it is recorded (`before_breadcrumb`).

    Args:
        crumb: The breadcrumb (message, data, category).
        hint: Sentry's hint (for example the log record); unused.

    Returns:
        A scrubbed copy of the breadcrumb.
    """
    return cast("Breadcrumb", _scrub(crumb))


def scrub_log(log: Log, hint: Hint) -> Log:
    """Redact a Sentry structured log before it is sent (`before_send_log`).

    Args:
        log: The log item (body and attributes).
        hint: Sentry's hint; unused.

    Returns:
        A scrubbed copy of the log item.
    """
    return cast("Log", _scrub(log))


def init_sentry(
    dsn: str | None,
    *,
    env: str,
    release: str | None = None,
    transport: Transport | type[Transport] | None = None,
    default_integrations: bool = True,
) -> bool:
    """Start error reporting to Sentry when a DSN is configured.

    Every event, transaction, breadcrumb and log passes through the scrubbers of
    this module; no default PII (user, IP, cookies) is sent and no traces are sampled.

    Args:
        dsn: The Sentry DSN (`SENTRY_DSN`); None or empty disables reporting.
        env: The deployment environment reported with each event.
        release: The release (a git sha or version); Sentry guesses when None.
        transport: A transport instance or class to use instead of HTTP (tests).
        default_integrations: Whether to enable Sentry's default and auto-enabling
            integrations (logging, excepthook, httpx, Celery, ...). Tests pass
            False so no library is patched for the rest of the test session.

    Returns:
        True when Sentry was initialised, False when there is no DSN.
    """
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=env,
        release=release,
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        before_send_log=scrub_log,
        # send_default_pii is left unset: unset means False, and sentry-sdk 2.75
        # deprecates passing it (a DeprecationWarning) in favour of data_collection.
        traces_sample_rate=0.0,
        transport=transport,
        default_integrations=default_integrations,
        auto_enabling_integrations=default_integrations,
    )
    return True
