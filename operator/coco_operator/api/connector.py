"""`Connector` (cluster-scoped): the registration of a connector, as in Coco's `PUT /connector/{id}`."""

from __future__ import annotations

from pydantic import Field

from coco_operator.api.common import ApiModel, Condition

# Processors this operator can run; a Connector naming another one is not Ready.
KNOWN_PROCESSORS = frozenset({"confluence"})

# Coco's builtin Confluence connector, as Coco registers it (PUT /connector/confluence).
BUILTIN_CONNECTORS: dict[str, dict[str, object]] = {
    "confluence": {
        "name": "Confluence wiki Connector",
        "description": "Fetch Confluence Wiki pages and blogposts.",
        "category": "website",
        "icon": "/assets/icons/connector/confluence/icon.png",
        "tags": ["wiki", "storage", "docs", "web"],
        "url": "http://coco.rs/connectors/confluence",
        "assets": {"icons": {"default": "/assets/icons/connector/confluence/icon.png"}},
        "processor": {"enabled": True, "name": "confluence"},
    }
}


class ConnectorProcessor(ApiModel):
    enabled: bool = Field(default=True, description="Enables the connector's processor; false pauses its Datasources.")
    name: str = Field(
        description="Processor that implements the connector. Known processors: confluence.",
        min_length=1,
        max_length=63,
    )


class ConnectorAssets(ApiModel):
    icons: dict[str, str] = Field(default_factory=dict, description="Icon paths by variant, e.g. default.")


class ConnectorSpec(ApiModel):
    name: str = Field(description="Display name, e.g. 'Confluence wiki Connector'.", min_length=1, max_length=256)
    description: str = Field(default="", description="What the connector fetches.", max_length=4096)
    category: str = Field(default="", description="Coco category, e.g. website.", max_length=63)
    icon: str = Field(default="", description="Icon path or URL.", max_length=2048)
    tags: list[str] = Field(default_factory=list, description="Free-form tags.", max_length=64)
    url: str = Field(default="", description="Documentation URL of the connector.", max_length=2048)
    assets: ConnectorAssets = Field(default_factory=ConnectorAssets, description="Static assets.")
    processor: ConnectorProcessor = Field(description="The processor that runs this connector's syncs.")


class ConnectorStatus(ApiModel):
    observedGeneration: int | None = Field(default=None, description="Generation last reconciled.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready (and Stalled while true).")
    datasources: int | None = Field(default=None, description="How many Datasources use this connector.")


class Connector(ApiModel):
    """Kind `Connector`."""

    spec: ConnectorSpec
    status: ConnectorStatus | None = None
