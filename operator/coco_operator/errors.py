"""Failures of a run, each with a reason for the Ready condition and a message that says what to do."""

from __future__ import annotations

from coco_operator.reasons import Reason


class SyncError(Exception):
    """A run failed for a known reason. `retryable` is False when only a user's change can fix it."""

    reason: Reason = Reason.SYNC_FAILED
    retryable = True

    def __init__(self, message: str, *, reason: Reason | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        if retryable is not None:
            self.retryable = retryable


class ConfigurationError(SyncError):
    reason = Reason.INVALID_SPEC
    retryable = False


class SecretError(SyncError):
    reason = Reason.SECRET_NOT_FOUND
    retryable = False


class ConnectorError(SyncError):
    reason = Reason.CONNECTOR_NOT_FOUND
    retryable = False


class AuthenticationError(SyncError):
    reason = Reason.AUTHENTICATION_FAILED
    retryable = False


class SpaceNotFoundError(SyncError):
    reason = Reason.SPACE_NOT_FOUND
    retryable = False


class ConfluenceUnavailableError(SyncError):
    reason = Reason.CONFLUENCE_UNAVAILABLE
    status_code: int | None = None


class EndpointRemovedError(SyncError):
    """Confluence answered 410 Gone: Atlassian removed the endpoint (CHANGE-864 removed v1 reads from the gateway)."""

    reason = Reason.ENDPOINT_REMOVED
    retryable = False


class ListingIncompleteError(SyncError):
    """A listing ended early (docs/security.md, point 5): retried, and nothing is deleted on its word."""

    reason = Reason.LISTING_INCOMPLETE


class SpaceArchivedError(SyncError):
    """The space is archived: content search returns nothing for it, so a run would index nothing."""

    reason = Reason.SPACE_ARCHIVED
    retryable = False


class SearchBackendError(SyncError):
    reason = Reason.SEARCH_BACKEND_UNAVAILABLE


class IndexingError(SyncError):
    reason = Reason.INDEXING_FAILED


class SyncTimeoutError(SyncError):
    reason = Reason.SYNC_TIMEOUT


class EgressDeniedError(SyncError):
    """The egress policy refused a URL, a redirect hop or an address (docs/security.md, point 1)."""

    reason = Reason.EGRESS_DENIED
    retryable = False


class ResponseTooLargeError(SyncError):
    """An answer exceeded its cap on decoded bytes or JSON values; nothing beyond the cap was kept."""

    reason = Reason.RESPONSE_TOO_LARGE


class MalformedAnswerError(SyncError):
    """An answer that cannot be decoded: an encoding the operator did not ask for, or broken compressed data."""

    reason = Reason.MALFORMED_RESPONSE
