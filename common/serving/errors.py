"""Errors the pipelines raise, each naming the status a caller should see.

Library code (codecs, channel models, pipelines) raises these without knowing
about gRPC: each carries a status name from the canonical set gRPC shares with
HTTP APIs ("INVALID_ARGUMENT", ...). The serving layer's interceptor
(common/serving/interceptors.py) turns the name into the gRPC status code with
the message, so every service maps errors the same way.
"""

from __future__ import annotations

# The canonical status names (gRPC's, shared with Google's HTTP APIs), without importing grpc.
STATUSES = ("CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
            "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
            "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")


QUOTE_LIMIT = 200  # characters of someone else's input a message quotes: metadata stays small


def quoted(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` as a message quotes it: whole when short, else its first `limit` characters and how many
    were left out (an echoed 20 KiB field would overflow the caller's metadata limit)."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def _check(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"status {status!r}: not a canonical status name ({', '.join(STATUSES)})")
    return status


class ServiceError(Exception):
    """Base class: an error with the status it maps to.

    Subclasses fix the status; a plain ServiceError takes one, e.g. to pass a
    downstream service's status on with a prefixed message.
    """

    status: str = "INTERNAL"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _check(cls.status)

    def __init__(self, message: str, status: str | None = None):
        super().__init__(message)
        if status is not None:
            self.status = _check(status)


class InvalidInput(ServiceError, ValueError):
    """Malformed or out-of-range input; the message names the field."""

    status = "INVALID_ARGUMENT"


class LimitExceeded(ServiceError):
    """Input over a configured size or bandwidth limit."""

    status = "RESOURCE_EXHAUSTED"


class Unavailable(ServiceError):
    """A model is not loaded or a downstream service cannot be reached."""

    status = "UNAVAILABLE"


class DataLost(ServiceError):
    """What was sent did not arrive (a frame erased on the link)."""

    status = "DATA_LOSS"


class FailedPrecondition(ServiceError):
    """The input is valid but the system will not take it as it is (e.g. a photo out of the semantic
    codecs' domain, with the transmitter set to refuse)."""

    status = "FAILED_PRECONDITION"
