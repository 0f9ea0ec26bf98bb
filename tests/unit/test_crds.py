"""The committed CRDs are exactly what the models generate, and carry what users rely on."""

from __future__ import annotations

from pathlib import Path

import yaml

from coco_operator.api.crd import connector_crd, crd_files, datasource_crd

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


def test_committed_crds_match_models() -> None:
    for name, content in crd_files().items():
        path = CRD_DIR / name
        assert path.exists(), f"{path} missing: run `coco-operator crds --output-dir crds`"
        hint = "run `coco-operator crds --output-dir crds`"
        assert path.read_text() == content, f"{path} drifted from the models: {hint}"
    assert sorted(p.name for p in CRD_DIR.glob("*.yaml")) == sorted(crd_files())


def _walk(schema: dict, path: str = "") -> list[str]:
    """Paths of nodes that break structural-schema rules."""
    bad = []
    for key in ("$ref", "anyOf", "allOf", "oneOf", "title"):
        if key in schema:
            bad.append(f"{path}:{key}")
    if "type" not in schema and "x-kubernetes-preserve-unknown-fields" not in schema and path:
        bad.append(f"{path}:no type")
    for name, sub in (schema.get("properties") or {}).items():
        bad += _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        bad += _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        bad += _walk(schema["additionalProperties"], f"{path}{{}}")
    return bad


def test_schemas_are_structural() -> None:
    for crd in (connector_crd(), datasource_crd()):
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert _walk(schema) == []


def test_datasource_crd_essentials() -> None:
    crd = datasource_crd()
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["categories"] == ["coco"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Connector", "Space", "Ready", "Status", "Documents", "Last Sync", "Age"]
    config = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["connector"]["properties"][
        "config"
    ]
    rules = [v["rule"] for v in config["x-kubernetes-validations"]]
    assert "!has(self.token)" in rules
    # tokenSecretRef is optional in the schema (OAuth uses oauthSecretRef); a CEL rule asks for exactly one.
    assert set(config["required"]) >= {"endpoint", "space"}
    assert "has(self.tokenSecretRef) != " in " ".join(rules)
    # Coco's own names inside config.
    assert {"endpoint", "username", "space", "enable_blogposts", "enable_attachments"} <= set(config["properties"])
    interval = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["sync"]["properties"][
        "interval"
    ]
    assert "duration(self) >= duration('10s')" in interval["x-kubernetes-validations"][0]["rule"]


def test_connector_crd_is_cluster_scoped() -> None:
    crd = connector_crd()
    assert crd["spec"]["scope"] == "Cluster"
    assert yaml.safe_load(crd_files()["connectors.coco.rs.yaml"])["metadata"]["name"] == "connectors.coco.rs"


def test_chart_ships_the_same_crds() -> None:
    chart_dir = CRD_DIR.parent / "charts" / "coco-operator" / "crds"
    for name, content in crd_files().items():
        assert (chart_dir / name).read_text() == content, f"copy crds/{name} to {chart_dir}"
