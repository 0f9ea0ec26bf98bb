"""`coco-operator convert`: Coco's JSON definitions (taken from Coco's own docs) into Kubernetes manifests."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from coco_operator.api.connector import ConnectorSpec
from coco_operator.api.datasource import DatasourceSpec
from coco_operator.convert.cli import add_parser
from coco_operator.convert.coco import convert
from coco_operator.convert.names import slugify
from coco_operator.convert.read import read_objects
from coco_operator.convert.report import ConvertOptions
from tests.ci import unavailable

# CI lays shared/ beside the clone; a developer's checkout has it at /work/shared.
REFERENCE = next(
    (
        p
        for p in (
            Path(__file__).resolve().parents[3] / "shared/reference/coco-confluence-connector.md",
            Path("/work/shared/reference/coco-confluence-connector.md"),
        )
        if p.exists()
    ),
    Path("/work/shared/reference/coco-confluence-connector.md"),
)
REPO = Path(__file__).resolve().parents[2]
DOCS_TOKEN = "your-confluence-api-token"


def _docs_text() -> str:
    if not REFERENCE.exists():
        unavailable(f"Coco's Confluence connector docs are not at {REFERENCE}")
    return REFERENCE.read_text()


@pytest.fixture(scope="module")
def docs_bodies() -> tuple[str, str]:
    """The JSON bodies of the docs' two curl commands, verbatim: PUT /connector/confluence, POST /datasource/."""
    bodies = re.findall(r"-d '(\{.*?\})'", _docs_text(), re.S)
    assert len(bodies) == 2, f"expected the connector and the datasource curl bodies, found {len(bodies)}"
    connector, datasource = bodies
    assert "processor" in json.loads(connector) and "connector" in json.loads(datasource)
    return connector, datasource


def run(argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str | None = None) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="coco-operator")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["convert", *argv])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", io.StringIO(stdin or ""))
        code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def docs(out: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(out: str, kind: str) -> list[dict[str, Any]]:
    return [d for d in docs(out) if d["kind"] == kind]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def datasource_body(**config: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "endpoint": "https://confluence.example.com",
        "token": "pat-0123456789",
        "space": "OPS",
    }
    base.update(config)
    return {"name": "Ops Wiki", "type": "connector", "connector": {"id": "confluence", "config": base}}


# --- the docs' own bodies -----------------------------------------------------------------------------------


def test_docs_bodies_convert_to_valid_manifests(
    docs_bodies: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    connector_json, datasource_json = docs_bodies
    files = [write(tmp_path, "connector.json", connector_json), write(tmp_path, "datasource.json", datasource_json)]
    code, out, err = run([*files, "--namespace", "docs"], capsys)
    assert code == 0, err
    assert [d["kind"] for d in docs(out)] == ["Connector", "Secret", "Datasource"]

    (connector,) = by_kind(out, "Connector")
    assert connector["apiVersion"] == "coco.rs/v1alpha1"
    assert connector["metadata"] == {"name": "confluence"}
    ConnectorSpec.model_validate(connector["spec"])
    assert connector["spec"] == json.loads(connector_json), "every field of Coco's connector body is carried over"
    example = yaml.safe_load((REPO / "manifests/examples/connector-confluence.yaml").read_text())
    assert connector["spec"] == example["spec"]

    (secret,) = by_kind(out, "Secret")
    assert secret["apiVersion"] == "v1" and secret["type"] == "Opaque"
    assert secret["metadata"] == {
        "name": "my-confluence-wiki-confluence-token",
        "namespace": "docs",
        "labels": {"coco.rs/usable-by-datasources": "true"},  # Datasources use only Secrets that opted in
    }
    assert secret["stringData"] == {"token": DOCS_TOKEN}

    (ds,) = by_kind(out, "Datasource")
    assert ds["metadata"] == {"name": "my-confluence-wiki", "namespace": "docs"}
    spec = DatasourceSpec.model_validate(ds["spec"])
    assert spec.name == "My Confluence Wiki" and spec.type == "connector" and spec.enabled
    assert spec.connector.id == "confluence"
    config = ds["spec"]["connector"]["config"]
    assert config == {
        "endpoint": "https://your-company.atlassian.net/wiki",
        "username": "your-email@example.com",
        "tokenSecretRef": {"name": "my-confluence-wiki-confluence-token", "key": "token"},
        "space": "DOCS",
        "enable_blogposts": False,
        "enable_attachments": False,
    }
    assert ds["spec"]["sync"] == {"enabled": True, "interval": "5m"}
    assert DOCS_TOKEN not in err
    assert "0 fields dropped; 0 errors" in err


def test_no_secrets_hides_the_token(docs_bodies: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["--no-secrets", "-n", "wiki"], capsys, stdin="\n".join(docs_bodies))
    assert code == 0, err
    assert DOCS_TOKEN not in out and DOCS_TOKEN not in err
    assert by_kind(out, "Secret") == []
    (ds,) = by_kind(out, "Datasource")
    ref = ds["spec"]["connector"]["config"]["tokenSecretRef"]
    assert ref == {"name": "my-confluence-wiki-confluence-token", "key": "token"}
    head = [line for line in out.splitlines() if line.startswith("#")]
    assert (
        "#   kubectl -n wiki create secret generic my-confluence-wiki-confluence-token --from-literal=token=..." in head
    )
    assert out.index("create secret") < out.index("---"), "the instruction comes before the manifests"


def test_name_secret_name_and_connector_id(docs_bodies: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--name", "eng-wiki", "--secret-name", "eng-token", "--connector-id", "wiki"]
    code, out, err = run(argv, capsys, stdin="".join(docs_bodies))
    assert code == 0, err
    (connector,) = by_kind(out, "Connector")
    (secret,) = by_kind(out, "Secret")
    (ds,) = by_kind(out, "Datasource")
    assert connector["metadata"]["name"] == "wiki"
    assert secret["metadata"] == {
        "name": "eng-token",
        "namespace": "default",
        "labels": {"coco.rs/usable-by-datasources": "true"},
    }
    assert ds["metadata"] == {"name": "eng-wiki", "namespace": "default"}
    assert ds["spec"]["connector"]["id"] == "wiki"
    assert ds["spec"]["connector"]["config"]["tokenSecretRef"] == {"name": "eng-token", "key": "token"}


def test_connector_configuration_block_drops_builtin_as_info(capsys: pytest.CaptureFixture[str]) -> None:
    """The docs' 'Connector Configuration' JSON (with Coco's id and builtin) converts, even with --strict."""
    match = re.search(r"### Connector Configuration.*?```json\n(.*?)```", _docs_text(), re.S)
    assert match, "the docs' Connector Configuration block"
    code, out, err = run(["--strict"], capsys, stdin=match.group(1))
    assert code == 0, err
    (connector,) = by_kind(out, "Connector")
    assert connector["metadata"]["name"] == "confluence"
    assert "builtin" not in connector["spec"]
    assert re.search(r"^info: .*connector \"Confluence wiki Connector\": builtin .*dropped intentionally", err, re.M)
    assert "warning" not in err and "error:" not in err


# --- reporting what is not carried over ---------------------------------------------------------------------


def test_every_field_kept_and_unknown_ones_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = {
        "id": "cs8e3gp5ksl4bmcq5ss0",
        "created": "2025-01-01T00:00:00Z",
        "updated": "2025-01-02T00:00:00Z",
        "name": "Everything Wiki",
        "type": "connector",
        "enabled": False,
        "enrichment_pipeline": {"enabled": True},
        "index": "wiki_docs",
        "connector": {
            "id": "confluence",
            "config": {
                "endpoint": "https://acme.atlassian.net/wiki",
                "username": "bot@acme.example",
                "token": "s3cr3t-cloud-token",
                "space": "ENG",
                "enable_blogposts": True,
                "enable_attachments": True,
                "foo": "bar",
            },
            "extra": 1,
        },
        "sync": {"enabled": False, "interval": "1h30m", "timeout": "20m", "strategy": "full"},
    }
    path = write(tmp_path, "all.json", json.dumps(body, indent=2))
    code, out, err = run([path], capsys)
    assert code == 0, err
    (ds,) = by_kind(out, "Datasource")
    spec = ds["spec"]
    DatasourceSpec.model_validate(spec)
    assert spec["name"] == "Everything Wiki" and spec["enabled"] is False and spec["index"] == "wiki_docs"
    assert spec["sync"] == {"enabled": False, "interval": "1h30m", "timeout": "20m"}
    config = spec["connector"]["config"]
    assert config["enable_blogposts"] is True and config["enable_attachments"] is True
    assert config["username"] == "bot@acme.example" and config["space"] == "ENG"
    assert "foo" not in config and "token" not in config
    assert by_kind(out, "Secret")[0]["stringData"]["token"] == "s3cr3t-cloud-token"

    where = f'{path}:1: datasource "Everything Wiki"'
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert f"warning: {where}: connector.config.foo is not a field of the confluence connector; dropped" in warnings
    assert any("connector.extra" in w and "dropped" in w for w in warnings)
    assert any("sync.strategy" in w and "dropped" in w for w in warnings)
    assert any(" enrichment_pipeline " in w and "dropped" in w for w in warnings)
    assert len(warnings) == 4, warnings
    infos = [line for line in err.splitlines() if line.startswith("info:")]
    assert any(": id is assigned by Coco" in i for i in infos)
    assert any(": created is set by Coco's server" in i for i in infos)
    assert "4 fields dropped; 0 errors" in err
    assert "s3cr3t-cloud-token" not in err

    code, out, err = run([path, "--strict"], capsys)
    assert code == 1
    assert by_kind(out, "Datasource") == [] and by_kind(out, "Secret") == []
    assert "error:" in err and "connector.config.foo" in err and "--strict" in err


@pytest.mark.parametrize(
    ("interval", "expect"), [("1s", "sync.interval must be at least 10s"), ("5 minutes", "pattern")]
)
def test_bad_interval_fails_that_datasource(
    interval: str, expect: str, docs_bodies: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = datasource_body()
    bad["name"] = "Too Often"
    bad["sync"] = {"enabled": True, "interval": interval}
    code, out, err = run([], capsys, stdin=docs_bodies[1] + json.dumps(bad))
    assert code == 1
    names = [d["metadata"]["name"] for d in docs(out)]
    assert names == ["my-confluence-wiki-confluence-token", "my-confluence-wiki"], (
        "the good datasource is still printed"
    )
    (line,) = [e for e in err.splitlines() if e.startswith("error:")]
    assert 'datasource "Too Often"' in line and "sync.interval" in line and expect in line
    assert "Fix: use a Go duration of at least 10s" in line
    assert "pat-0123456789" not in out + err


def test_validation_error_names_file_field_and_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bad.json", json.dumps(datasource_body(space="NOT A KEY", endpoint="ftp://x")))
    code, out, err = run([path], capsys)
    assert code == 1 and out == ""
    errors = [e for e in err.splitlines() if e.startswith("error:")]
    assert any(path in e and "connector.config.space" in e and "Fix: use the space key" in e for e in errors)
    assert any(path in e and "connector.config.endpoint" in e and "Fix: use the site's URL" in e for e in errors)
    assert "pat-0123456789" not in err


def test_cloud_without_username_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    body = datasource_body(endpoint="https://acme.atlassian.net/wiki")
    code, out, err = run([], capsys, stdin=json.dumps(body))
    assert code == 1 and out == ""
    assert "connector.config: Confluence Cloud (*.atlassian.net) needs username" in err


# --- inputs -------------------------------------------------------------------------------------------------


def test_stdin_dash_and_no_file(docs_bodies: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["-"]):
        code, out, err = run(argv, capsys, stdin=docs_bodies[1])
        assert code == 0, err
        assert [d["kind"] for d in docs(out)] == ["Secret", "Datasource"]
        assert "error:" not in err and DOCS_TOKEN not in err


def test_concatenated_objects_and_arrays(docs_bodies: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    connector, datasource = docs_bodies
    second = datasource_body()
    for text in (
        connector + datasource + json.dumps(second),  # cat'ed curl bodies, no separator
        f"{connector}\n\n{datasource}\n{json.dumps(second)}\n",
        f"[{connector}, {datasource}, {json.dumps(second)}]",
        f"{connector},\n[{datasource}]\n{json.dumps(second)}",
    ):
        code, out, err = run([], capsys, stdin=text)
        assert code == 0, err
        assert [d["kind"] for d in docs(out)] == ["Connector", "Secret", "Datasource", "Secret", "Datasource"]
        assert [d["metadata"]["name"] for d in by_kind(out, "Datasource")] == ["my-confluence-wiki", "ops-wiki"]


def test_datasource_before_connector_still_maps_ids(
    docs_bodies: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    connector = json.loads(docs_bodies[0]) | {"id": "wiki-connector"}
    datasource = json.loads(docs_bodies[1])
    datasource["connector"]["id"] = "wiki-connector"
    code, out, err = run([], capsys, stdin=json.dumps(datasource) + json.dumps(connector))
    assert code == 0, err
    assert [d["kind"] for d in docs(out)] == ["Connector", "Secret", "Datasource"]
    assert by_kind(out, "Connector")[0]["metadata"]["name"] == "wiki-connector"
    assert by_kind(out, "Datasource")[0]["spec"]["connector"]["id"] == "wiki-connector"


def test_data_center_without_username(capsys: pytest.CaptureFixture[str]) -> None:
    body = datasource_body(enable_attachments=True)
    body["sync"] = {"interval": "15m"}
    code, out, err = run(["-n", "ops"], capsys, stdin=json.dumps(body))
    assert code == 0, err
    (ds,) = by_kind(out, "Datasource")
    spec = DatasourceSpec.model_validate(ds["spec"])
    assert spec.connector.config.username is None
    assert "username" not in ds["spec"]["connector"]["config"]
    assert spec.sync.interval == "15m"
    assert by_kind(out, "Secret")[0]["stringData"] == {"token": "pat-0123456789"}

    body["connector"]["config"]["username"] = ""  # as Coco's UI saves it for a personal access token
    code, out, err = run([], capsys, stdin=json.dumps(body))
    assert code == 0, err
    assert "username" not in by_kind(out, "Datasource")[0]["spec"]["connector"]["config"]
    assert "username is empty" in err


def test_non_json_names_file_and_position(
    docs_bodies: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    curl = write(tmp_path, "curl.txt", f"curl -XPOST \"http://localhost:9000/datasource/\" -d '{docs_bodies[1]}'\n")
    code, out, err = run([curl], capsys)
    assert code == 1 and out == ""
    assert f"error: {curl}:1:1: not valid JSON at line 1 column 1" in err
    assert "curl command" in err
    assert DOCS_TOKEN not in err

    broken = write(tmp_path, "broken.json", '{\n  "name": "x",\n  "type": connector\n}')
    code, out, err = run([broken], capsys)
    assert code == 1
    assert f"{broken}:3:11: not valid JSON at line 3 column 11" in err


def test_unreadable_and_unrecognised_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.json")
    code, _, err = run([missing], capsys)
    assert code == 1 and missing in err and "cannot read" in err

    code, out, err = run([], capsys, stdin='{"name": "what am I", "foo": 1} [1]')
    assert code == 1 and out == ""
    assert 'object "what am I"' in err and "cannot tell what this is" in err
    assert "expected a JSON object, got int" in err

    code, _, err = run([], capsys, stdin='{"apiVersion": "coco.rs/v1alpha1", "kind": "Datasource"}')
    assert code == 1 and "already a Kubernetes manifest" in err


def test_coco_get_response_is_unwrapped(docs_bodies: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    wrapped = {"_id": "confluence", "_source": json.loads(docs_bodies[0]), "found": True}
    code, out, err = run([], capsys, stdin=json.dumps(wrapped))
    assert code == 0, err
    assert by_kind(out, "Connector")[0]["metadata"]["name"] == "confluence"


def test_usage_errors(docs_bodies: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    two = docs_bodies[1] + json.dumps(datasource_body())
    code, out, err = run(["--name", "one"], capsys, stdin=two)
    assert code == 2 and out == "" and "--name" in err and "2 datasources" in err
    code, _, err = run(["--namespace", "Not_Valid"], capsys, stdin=docs_bodies[1])
    assert code == 2 and "--namespace" in err


def test_secret_name_shared_only_with_the_same_token(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = datasource_body(space="A"), datasource_body(space="B")
    b["name"] = "Other Wiki"
    code, out, err = run(["--secret-name", "shared"], capsys, stdin=json.dumps(a) + json.dumps(b))
    assert code == 0, err
    assert [d["kind"] for d in docs(out)] == ["Secret", "Datasource", "Datasource"]
    b["connector"]["config"]["token"] = "another-token-value"
    code, out, err = run(["--secret-name", "shared"], capsys, stdin=json.dumps(a) + json.dumps(b))
    assert code == 1 and "already holds a different token" in err
    assert "another-token-value" not in err and "pat-0123456789" not in err


def test_missing_token_tells_how_to_create_the_secret(capsys: pytest.CaptureFixture[str]) -> None:
    body = datasource_body()
    del body["connector"]["config"]["token"]
    code, out, err = run([], capsys, stdin=json.dumps(body))
    assert code == 0, err
    assert by_kind(out, "Secret") == []
    assert "#   kubectl -n default create secret generic ops-wiki-confluence-token --from-literal=token=..." in out
    label = "#   kubectl -n default label secret ops-wiki-confluence-token coco.rs/usable-by-datasources=true"
    assert label in out
    assert "has no connector.config.token" in err


def test_duplicate_names_are_made_unique() -> None:
    result = convert([("a.json", json.dumps(datasource_body()) + json.dumps(datasource_body(space="B")))])
    assert not result.failed
    assert [d["metadata"]["name"] for d in result.kinds("Datasource")] == ["ops-wiki", "ops-wiki-2"]
    assert [d["metadata"]["name"] for d in result.kinds("Secret")] == [
        "ops-wiki-confluence-token",
        "ops-wiki-2-confluence-token",
    ]


def test_library_api() -> None:
    assert slugify("My Confluence Wiki") == "my-confluence-wiki"
    assert slugify("  Über  Wiki (Ops)! ") == "uber-wiki-ops"
    long = slugify("x" * 100)
    assert len(long) == 63
    sources, findings = read_objects('{"a": 1}\n{"b": 2}', "in.json")
    assert [s.where for s in sources] == ["in.json:1", "in.json:2"] and findings == []
    result = convert([("x.json", json.dumps(datasource_body()))], ConvertOptions(namespace="n1", no_secrets=True))
    assert not result.failed and result.kinds("Secret") == []
    assert "pat-0123456789" not in result.render_yaml() + result.render_report()


def test_help_text(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="coco-operator")
    add_parser(parser.add_subparsers())
    assert "convert" in parser.format_help()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["convert", "--help"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    assert "--no-secrets" in help_text and "POST /datasource/" in help_text
