"""HTTP helpers every provider adapter shares: one retry loop for idempotent reads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from tools.errors import BadProviderResponse, ProviderUnavailable, RateLimited
from tools.settings import ProviderSettings

logger = logging.getLogger(__name__)

# Waiting longer than this inside a request is worse than failing over to the offline decoder.
DEFAULT_MAX_RETRY_AFTER_S = 10.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Timeout and retry budget for one provider's idempotent reads.

    Attributes:
        timeout_s: The timeout of each attempt (connect, read, write and pool).
        retries: How many times a failed attempt is repeated (0 = one attempt only).
        backoff_s: The first pause between attempts; it doubles after each one.
        max_retry_after_s: The longest `Retry-After` worth waiting for; a longer
            one raises `RateLimited` at once.
    """

    timeout_s: float
    retries: int
    backoff_s: float
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S

    @classmethod
    def from_settings(
        cls, settings: ProviderSettings, *, max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S
    ) -> RetryPolicy:
        """Build the policy from a provider's settings."""
        return cls(
            timeout_s=settings.timeout_s,
            retries=settings.retries,
            backoff_s=settings.retry_backoff_s,
            max_retry_after_s=max_retry_after_s,
        )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return the seconds a `Retry-After` header asks for, or None when absent or unreadable.

    Args:
        value: The header value: delay-seconds or an HTTP date.
        now: The current time, for HTTP dates (defaults to the clock).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def send_with_retries(
    http: httpx.AsyncClient,
    provider: str,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    what: str,
    params: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Send an idempotent read, retrying timeouts, connection errors, 5xx and 429.

    Only call this for reads: every attempt may reach the server. The answer is
    returned as soon as it is not retryable, whatever its status; the caller
    judges it.

    Args:
        http: The shared client.
        provider: The provider's name, for errors and logs.
        method: The HTTP method.
        url: The full URL.
        policy: The timeout and retry budget.
        what: A short label for logs; it must not contain a full VIN or a secret.
        params: Query parameters.
        data: A form body.
        headers: Extra request headers.

    Raises:
        ProviderUnavailable: every attempt failed.
        RateLimited: the provider asked us to wait longer than `policy.max_retry_after_s`.
        BadProviderResponse: the answer could not be read at the HTTP level
            (bad content encoding, redirect loop).
    """
    attempts = policy.retries + 1
    for attempt in range(1, attempts + 1):
        delay = policy.backoff_s * 2 ** (attempt - 1)
        try:
            response = await http.request(
                method, url, params=params, data=data, headers=headers, timeout=policy.timeout_s
            )
            response.raise_for_status()
        except httpx.TransportError as e:  # timeouts, refused and dropped connections
            failure: httpx.HTTPError = e
            reason = type(e).__name__
        except httpx.HTTPStatusError as e:
            status = e.response.status_code
            if status != 429 and status < 500:
                return e.response
            failure, reason = e, f"HTTP {status}"
            if (
                status == 429
                and (wait := parse_retry_after(e.response.headers.get("Retry-After"))) is not None
            ):
                if wait > policy.max_retry_after_s:
                    raise RateLimited(provider, wait) from e
                delay = wait
        except httpx.RequestError as e:  # not a transport failure: retrying gives the same answer
            raise BadProviderResponse(provider) from e
        else:
            return response
        if attempt == attempts:
            raise ProviderUnavailable(provider) from failure
        logger.info(
            "%s %s: attempt %d of %d failed (%s); retrying in %.2fs",
            provider,
            what,
            attempt,
            attempts,
            reason,
            delay,
        )
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
