"""The one exception tree of vinbot.

Every error a caller is expected to handle derives from `AppError` and carries a
stable `code` (for programs: API clients, the agent, tests) and a `public_message`
(for people; it never contains internals such as DSNs, stack traces or raw payloads)::

    AppError
    ├── DomainError                 the request itself cannot be satisfied
    │   ├── InvalidVin              bad VIN text: reason, "did you mean" suggestions
    │   ├── VehicleNotFound
    │   ├── UnsupportedComparison
    │   ├── InvalidInput            a bad argument other than a VIN (year hint, file)
    │   └── NotAllowed              the caller's tier does not include this
    └── ProviderError               a data provider or backing service misbehaved
        ├── ProviderUnavailable     timeout, connection refused, 5xx
        ├── RateLimited             a limit has no quota left; carries retry_after
        └── BadProviderResponse     the provider answered something we cannot read

Mapping to transports happens only at the edges (HTTP status, Telegram text, JSON
for the model). Never match on exception strings: match on the class or `code`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class AppError(Exception):
    """Base of every expected error."""

    code: str = "app_error"

    def __init__(self, public_message: str, *, code: str | None = None) -> None:
        super().__init__(public_message)
        self.public_message = public_message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, object]:
        """Return the error as JSON-ready data for clients and the model."""
        return {"error": self.code, "message": self.public_message}


class DomainError(AppError):
    """The request cannot be satisfied as asked."""

    code = "domain_error"


class InvalidVin(DomainError):
    """A VIN that is not a valid 17-character VIN.

    `reason` is a stable sub-code (`empty`, `too_short`, `too_long`,
    `forbidden_letters`, `invalid_characters`); `suggestions` are VINs the
    user may have meant, each with a correct check digit.
    """

    code = "invalid_vin"

    def __init__(
        self, public_message: str, *, reason: str, raw: str = "", suggestions: Sequence[str] = ()
    ) -> None:
        super().__init__(public_message)
        self.reason = reason
        self.raw = raw
        self.suggestions = tuple(suggestions)

    def to_dict(self) -> dict[str, object]:
        """Return the error with its reason and suggestions."""
        return {**super().to_dict(), "reason": self.reason, "suggestions": list(self.suggestions)}


class VehicleNotFound(DomainError):
    """No data for the vehicle asked about."""

    code = "vehicle_not_found"


class UnsupportedComparison(DomainError):
    """A comparison that cannot be made (too few or too many vehicles)."""

    code = "unsupported_comparison"


class InvalidInput(DomainError):
    """A bad argument other than a VIN."""

    code = "invalid_input"


class NotAllowed(DomainError):
    """The caller's tier or settings do not allow this."""

    code = "not_allowed"


class ProviderError(AppError):
    """A data provider or backing service failed."""

    code = "provider_error"

    def __init__(self, provider: str, public_message: str | None = None) -> None:
        super().__init__(public_message or f"The {provider} service is not available right now.")
        self.provider = provider


class ProviderUnavailable(ProviderError):
    """The provider did not answer in time, refused, or failed (5xx)."""

    code = "provider_unavailable"


class BadProviderResponse(ProviderError):
    """The provider answered with something we cannot interpret."""

    code = "bad_provider_response"

    def __init__(self, provider: str, public_message: str | None = None) -> None:
        super().__init__(provider, public_message or f"The {provider} service sent an unreadable answer.")


class RateLimited(ProviderError):
    """A limit has no quota left; try again after `retry_after` seconds."""

    code = "rate_limited"

    def __init__(self, bucket: str, retry_after: float, public_message: str | None = None) -> None:
        if not math.isfinite(retry_after):
            raise ValueError("retry_after must be a finite number of seconds")
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            bucket, public_message or f"Too many requests. Please try again in {seconds} seconds."
        )
        self.bucket = bucket
        self.retry_after = max(0.0, retry_after)

    def to_dict(self) -> dict[str, object]:
        """Return the error with its `retry_after` in seconds."""
        return {**super().to_dict(), "retry_after": round(self.retry_after, 3)}
