"""The custom resources' API: pydantic models are the single source of truth for the CRDs."""

from coco_operator.api.common import GROUP, VERSION, Condition, SecretKeyRef
from coco_operator.api.connector import Connector, ConnectorSpec, ConnectorStatus
from coco_operator.api.datasource import (
    ConfluenceConfig,
    Datasource,
    DatasourceSpec,
    DatasourceStatus,
    SyncCounts,
)

__all__ = [
    "GROUP",
    "VERSION",
    "Condition",
    "ConfluenceConfig",
    "Connector",
    "ConnectorSpec",
    "ConnectorStatus",
    "Datasource",
    "DatasourceSpec",
    "DatasourceStatus",
    "SecretKeyRef",
    "SyncCounts",
]
