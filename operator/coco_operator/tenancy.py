"""Which indexes a namespace may write and which embedders its Datasources may name (docs/security.md, point 2).

Pure decisions from the operator's settings:

- a namespace owns the index `<namespace>` and every `<namespace>_<suffix>` (namespace names cannot hold `_`, so
  `team` owns `team_docs` and `team-a` does not);
- shared indexes (`shared_indexes`, default the operator's default index) take documents from any namespace;
- index grants (`index_grants`: namespace -> names or `prefix*` patterns) widen one namespace's list.

Only an owned index gets settings from a Datasource (its embedder profiles); shared and granted indexes get
settings from the operator's configuration alone, so one tenant cannot reconfigure an index others write to.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from coco_operator.errors import ConfigurationError, SyncError
from coco_operator.reasons import Reason
from coco_operator.secret_values import clean_secret_value
from coco_operator.settings import Settings

Access = Literal["owned", "shared", "granted"]
API_KEY_ENV = "apiKeyEnv"  # in a profile: the operator's environment variable with the embedder's key


def namespace_of(datasource_id: str) -> str:
    """The namespace of `namespace/name`."""
    return datasource_id.partition("/")[0]


def owned_patterns(namespace: str) -> list[str]:
    """The index names a namespace owns, as Meilisearch key patterns."""
    return [namespace, f"{namespace}_*"]


def owns(namespace: str, index: str) -> bool:
    return index == namespace or index.startswith(f"{namespace}_")


def index_access(namespace: str, index: str, settings: Settings) -> Access | None:
    """How `namespace` may use `index`: owned, shared, granted, or not at all (None)."""
    if owns(namespace, index):
        return "owned"
    if index in settings.shared_index_names:
        return "shared"
    if any(fnmatch.fnmatchcase(index, p) for p in settings.index_grants.get(namespace, [])):
        return "granted"
    return None


def allowed_indexes(namespace: str, settings: Settings) -> list[str]:
    """What a message lists as the namespace's choices."""
    return [*owned_patterns(namespace), *settings.shared_index_names, *settings.index_grants.get(namespace, [])]


def index_problem(datasource_id: str, index: str, settings: Settings) -> SyncError | None:
    """Why the Datasource may not write into `index`, or None."""
    namespace = namespace_of(datasource_id)
    if index_access(namespace, index, settings) is not None:
        return None
    choices = ", ".join(allowed_indexes(namespace, settings))
    return SyncError(
        f"Datasource {datasource_id} may not write into index {index!r}: a namespace writes only into the indexes "
        f"it owns (named {namespace} or {namespace}_<suffix>), the shared indexes and indexes the administrator "
        f"granted it (allowed here: {choices}). Set spec.index to one of them (e.g. {namespace}_docs), or ask the "
        f"operator's administrator to grant it (indexGrants: {{{namespace}: [{index}]}})",
        reason=Reason.INDEX_NOT_ALLOWED,
        retryable=False,
    )


def embedder_settings(
    datasource_id: str,
    index: str,
    profiles: Sequence[str] | None,
    settings: Settings,
    environ: Mapping[str, str],
) -> dict[str, dict[str, Any]] | None:
    """Meilisearch's `embedders` setting for the named profiles (None: none named). Raises SyncError for an unknown
    profile, a profile on an index the namespace does not own, or a profile whose key is missing."""
    if not profiles:
        return None
    namespace = namespace_of(datasource_id)
    unknown = [p for p in profiles if p not in settings.embedder_profiles]
    if unknown:
        known = ", ".join(sorted(settings.embedder_profiles)) or "none are defined"
        raise ConfigurationError(
            f"Datasource {datasource_id} names embedder profile(s) {', '.join(unknown)} in spec.embedders, which "
            f"the operator does not define (profiles: {known}); use one of them or ask the administrator to add it "
            "(chart value embedderProfiles)",
            reason=Reason.EMBEDDER_PROFILE_NOT_FOUND,
        )
    if not owns(namespace, index):
        raise ConfigurationError(
            f"Datasource {datasource_id} names embedders for index {index!r}, which namespace {namespace} does not "
            f"own: shared and granted indexes get their settings from the operator only. Remove spec.embedders, or "
            f"write into an index the namespace owns ({namespace} or {namespace}_<suffix>)",
            reason=Reason.EMBEDDERS_NOT_ALLOWED,
        )
    return {name: _profile(name, settings.embedder_profiles[name], environ) for name in profiles}


def _profile(name: str, profile: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    out = {k: v for k, v in profile.items() if k != API_KEY_ENV}
    variable = profile.get(API_KEY_ENV)
    if variable:
        value = environ.get(str(variable))
        if not value:
            raise ConfigurationError(
                f"embedder profile {name!r} takes its API key from the operator's environment variable {variable}, "
                "which is not set; the operator's administrator must set it (chart embedderProfiles."
                f"{name}.apiKeySecret)",
                reason=Reason.EMBEDDER_PROFILE_INVALID,
                retryable=True,
            )
        out["apiKey"] = clean_secret_value(value, secret=f"of embedder profile {name!r} ({variable})", key=None)
    return out
