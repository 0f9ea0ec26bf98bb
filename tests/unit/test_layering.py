"""The package's layering: each module imports only from its own layer or lower ones, never upward.

    foundation -> api -> confluence/search/enrich -> documents -> sync/status -> dispatcher -> controller -> cli

Every import counts, also one inside a function or under TYPE_CHECKING: a lazy upward import is still a
dependency that runs upward.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "coco_operator"

LAYERS: list[set[str]] = [
    {"", "times", "reasons", "errors", "aio", "settings", "logs", "metrics"},  # foundation: leaf helpers
    # cross-cutting bounds: egress policy, secret values, limits, killable workers, RE2 patterns, index ownership
    {"egress", "egress_http", "secret_values", "limits", "workers", "patterns", "tenancy"},
    {"api"},
    {"confluence", "search", "enrich", "permissions"},
    {"documents"},
    {"sync", "status"},
    {"dispatcher"},
    {"controller"},
    {"cli", "commands", "convert"},
]


def _unit(module: str) -> str:
    """The layer unit of a dotted module name inside the package: its first component ('' for the package)."""
    parts = module.split(".")
    assert parts[0] == "coco_operator", module
    return parts[1] if len(parts) > 1 else ""


def _layer(module: str) -> int:
    unit = _unit(module)
    for level, units in enumerate(LAYERS):
        if unit in units:
            return level
    raise AssertionError(f"{module} is in no layer: add {unit!r} to LAYERS in {__file__}")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").exists() or (PACKAGE / rel / "__init__.py").exists()


def _imports(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every coco_operator module `source` imports, resolved from relative imports too."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("coco_operator")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("coco_operator"):
                # `from coco_operator import status` imports the module `status`; `... import __version__` a name.
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    found.append((node.lineno, target if _is_module(target) else base))
    return sorted(found)


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    assert MODULES, f"no modules under {PACKAGE}"
    for path in MODULES:
        _layer(_module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_upward(path: Path) -> None:
    here = _module_name(path)
    upward = [
        f"{path.relative_to(PACKAGE)}:{line} imports {target} (layer {_layer(target)} > {_layer(here)})"
        for line, target in _imports(path.read_text(), here, is_package=path.name == "__init__.py")
        if _layer(target) > _layer(here)
    ]
    assert not upward, "\n".join(upward)


def test_the_check_sees_upward_imports_in_every_form() -> None:
    source = (
        "from coco_operator.dispatcher import host\n"
        "def later():\n    from ..controller import kube\n"
        "import coco_operator.cli\n"
        "from coco_operator import status, __version__\n"
    )
    found = [target for _, target in _imports(source, "coco_operator.sync.fake")]
    assert found == [
        "coco_operator.dispatcher.host",
        "coco_operator.controller.kube",
        "coco_operator.cli",
        "coco_operator",
        "coco_operator.status",
    ]
    layers = [_layer(t) for t in found]
    assert layers == [
        _layer("coco_operator.dispatcher"),
        _layer("coco_operator.controller"),
        _layer("coco_operator.cli"),
        0,
        _layer("coco_operator.status"),
    ]
    assert layers[0] < layers[1] < layers[2] and layers[4] < layers[0]
