"""Errors the pipelines raise, each bound to the gRPC status a caller should see.

Library code (codecs, channel models, pipelines) raises these without knowing
about gRPC; the server interceptor (common/interceptors.py) turns them into
the status code with the message, so every service maps errors the same way.
"""

from __future__ import annotations

import grpc


class ServiceError(Exception):
    """Base class: an error with the gRPC status code it maps to.

    Subclasses fix the code; a plain ServiceError takes one, e.g. to pass a
    downstream service's code on with a prefixed message.
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, code: grpc.StatusCode | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidInput(ServiceError, ValueError):
    """Malformed or out-of-range input; the message names the field."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class LimitExceeded(ServiceError):
    """Input over a configured size or bandwidth limit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ServiceError):
    """A model is not loaded or a downstream service cannot be reached."""

    code = grpc.StatusCode.UNAVAILABLE

