"""Types shared by both kinds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from coco_operator.times import to_second

GROUP = "coco.rs"
VERSION = "v1alpha1"
CATEGORY = "coco"
# The label a Secret carries to be usable by Datasources (docs/security.md, point 4).
SECRET_OPT_IN_LABEL = f"{GROUP}/usable-by-datasources"


# A time in status: written in UTC with whole seconds, as Kubernetes writes its own (the schema stays date-time).
Timestamp = Annotated[datetime, PlainSerializer(to_second, return_type=datetime, when_used="json")]
ConditionStatus = Literal["True", "False", "Unknown"]


def cel(rule: str, message: str, reason: str | None = None, field_path: str | None = None) -> dict[str, Any]:
    """One x-kubernetes-validations rule: CEL checked by the API server at admission."""
    out: dict[str, Any] = {"rule": rule, "message": message}
    if reason:
        out["reason"] = reason
    if field_path:
        out["fieldPath"] = field_path
    return out


class ApiModel(BaseModel):
    """Base for API types: camelCase on the wire is spelled out per field; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SecretKeyRef(ApiModel):
    """A key of a Secret in the Datasource's own namespace."""

    name: str = Field(
        description="Name of the Secret, in the same namespace as the Datasource.",
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    )
    key: str = Field(
        default="token",
        description="Key inside the Secret's data that holds the value.",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
    )


class ConfigMapKeyRef(ApiModel):
    """A key of a ConfigMap in the Datasource's own namespace."""

    name: str = Field(
        description="Name of the ConfigMap, in the same namespace as the Datasource.",
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    )
    key: str = Field(
        default="ca.crt",
        description="Key inside the ConfigMap's data.",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
    )


class Condition(ApiModel):
    """A Kubernetes-convention condition (metav1.Condition)."""

    type: str = Field(description="Type of condition in CamelCase, e.g. Ready.", max_length=316)
    status: ConditionStatus = Field(description="Status of the condition.")
    reason: str = Field(description="CamelCase reason for the last transition.", max_length=1024)
    message: str = Field(default="", description="Human-readable details.", max_length=32768)
    lastTransitionTime: Timestamp = Field(description="When the status last changed.")
    observedGeneration: int | None = Field(
        default=None, description="The .metadata.generation the condition was set for.", ge=0
    )
