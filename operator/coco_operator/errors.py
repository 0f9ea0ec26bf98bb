"""Failures of a run, each with a CamelCase reason for the Ready condition and a message that says what to do."""

from __future__ import annotations


class SyncError(Exception):
    """A run failed for a known reason. `retryable` is False when only a user's change can fix it."""

    reason = "SyncFailed"
    retryable = True

    def __init__(self, message: str, *, reason: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        if retryable is not None:
            self.retryable = retryable


class ConfigurationError(SyncError):
    reason = "InvalidSpec"
    retryable = False


class SecretError(SyncError):
    reason = "SecretNotFound"
    retryable = False


class ConnectorError(SyncError):
    reason = "ConnectorNotFound"
    retryable = False


class AuthenticationError(SyncError):
    reason = "AuthenticationFailed"
    retryable = False


class SpaceNotFoundError(SyncError):
    reason = "SpaceNotFound"
    retryable = False


class ConfluenceUnavailableError(SyncError):
    reason = "ConfluenceUnavailable"
    status_code: int | None = None


class SearchBackendError(SyncError):
    reason = "SearchBackendUnavailable"


class IndexingError(SyncError):
    reason = "IndexingFailed"


class SyncTimeoutError(SyncError):
    reason = "SyncTimeout"


class EgressDeniedError(SyncError):
    """The egress policy refused a URL, a redirect hop or an address (docs/security.md, point 1)."""

    reason = "EgressDenied"
    retryable = False


class ResponseTooLargeError(SyncError):
    """An answer exceeded its cap on decoded bytes or JSON values; nothing beyond the cap was kept."""

    reason = "ResponseTooLarge"


class MalformedAnswerError(SyncError):
    """An answer that cannot be decoded: an encoding the operator did not ask for, or broken compressed data."""

    reason = "MalformedResponse"
