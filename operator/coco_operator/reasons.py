"""The reasons the operator writes into conditions and Events, and the condition types: one vocabulary.

Reasons are CamelCase words users match on (`kubectl wait`, alerts, GitOps health checks), so they are spelled in
one place. A `StrEnum` member is its string, so status and Events carry the plain word.
"""

from __future__ import annotations

from enum import StrEnum


class ConditionType(StrEnum):
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class Reason(StrEnum):
    # Ready=True, or work in progress
    SUCCEEDED = "Succeeded"
    READY = "Ready"  # a Connector whose processor runs
    PROGRESSING = "Progressing"
    PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
    QUEUED = "Queued"
    RESUMED = "Resumed"
    # Paused: no runs until the cause changes
    DISABLED = "Disabled"
    SUSPENDED = "Suspended"
    CONNECTOR_DISABLED = "ConnectorDisabled"
    INVALID_SPEC = "InvalidSpec"
    UNKNOWN_PROCESSOR = "UnknownProcessor"
    # A run failed
    SYNC_FAILED = "SyncFailed"
    SYNC_TIMEOUT = "SyncTimeout"
    ENDPOINT_NOT_ALLOWED = "EndpointNotAllowed"
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_FORBIDDEN = "SecretForbidden"
    SECRET_KEY_NOT_FOUND = "SecretKeyNotFound"
    CONFIG_MAP_NOT_FOUND = "ConfigMapNotFound"
    CONFIG_MAP_KEY_NOT_FOUND = "ConfigMapKeyNotFound"
    CONNECTOR_NOT_FOUND = "ConnectorNotFound"
    CONNECTOR_NOT_READY = "ConnectorNotReady"
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    SPACE_NOT_FOUND = "SpaceNotFound"
    SPACE_ARCHIVED = "SpaceArchived"
    SPACE_PERMISSIONS_UNREADABLE = "SpacePermissionsUnreadable"
    CONFLUENCE_UNAVAILABLE = "ConfluenceUnavailable"
    ENDPOINT_REMOVED = "EndpointRemoved"
    LISTING_INCOMPLETE = "ListingIncomplete"
    ATTACHMENT_TOO_LARGE = "AttachmentTooLarge"
    EGRESS_DENIED = "EgressDenied"
    RESPONSE_TOO_LARGE = "ResponseTooLarge"
    MALFORMED_RESPONSE = "MalformedResponse"
    REDIRECT_LOOP = "RedirectLoop"
    SECRET_VALUE_INVALID = "SecretValueInvalid"
    SEARCH_BACKEND_UNAVAILABLE = "SearchBackendUnavailable"
    SEARCH_BACKEND_UNAUTHORIZED = "SearchBackendUnauthorized"
    INDEXING_FAILED = "IndexingFailed"
    ENRICHMENT_FAILED = "EnrichmentFailed"
    JOB_FAILED = "JobFailed"
    JOB_VANISHED = "JobVanished"
    # Tenancy and safety (docs/security.md)
    INDEX_NOT_ALLOWED = "IndexNotAllowed"
    EMBEDDER_PROFILE_NOT_FOUND = "EmbedderProfileNotFound"
    EMBEDDER_PROFILE_INVALID = "EmbedderProfileInvalid"
    EMBEDDERS_NOT_ALLOWED = "EmbeddersNotAllowed"
    JOB_MODE_NEEDS_OWN_INDEX = "JobModeNeedsOwnIndex"
    SECRET_NOT_OPTED_IN = "SecretNotOptedIn"
    MASS_DELETION_REFUSED = "MassDeletionRefused"
    INTERNAL_ERROR = "InternalError"
    KUBERNETES_UNAVAILABLE = "KubernetesUnavailable"
    # Events only (a run's start and success are not condition reasons)
    SYNC_STARTED = "SyncStarted"
    SYNC_SUCCEEDED = "SyncSucceeded"


# A Ready reason that says the Datasource is paused: a resume must replace it even when no run is due.
PAUSED = frozenset({Reason.SUSPENDED, Reason.DISABLED, Reason.CONNECTOR_DISABLED, Reason.INVALID_SPEC})
