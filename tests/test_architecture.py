"""The layers of docs/architecture.md, checked by reading the imports of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Top-level folders of the repository and the import name each installs as.
PACKAGE_FOLDERS = {"harness": "harness", "generators": "generators", "detectors": "detectors", "testing": "testing"}
#: Layer -> the layers it may import (besides itself). docs/architecture.md shows the same table.
ALLOWED = {
    "harness.contracts": set(),
    "generators": {"harness.contracts"},
    "detectors": {"harness.contracts"},
    "harness.data": {"harness.contracts"},
    "harness.run": {"harness.contracts", "harness.data"},
    "harness.report": {"harness.contracts", "harness.data", "harness.run"},
    "testing": {"harness.contracts", "harness.data", "harness.run"},
    "harness.cli": {"harness.contracts", "harness.data", "harness.run", "harness.report", "generators", "detectors",
                    "testing"},
    "harness": {"harness.contracts"},  # harness/__init__.py: the version only
}


def layer_of(module: str) -> str:
    """The layer of a dotted module name below ``facebench`` (``harness.run.runner`` -> ``harness.run``)."""
    parts = module.split(".")
    if parts[0] == "harness" and len(parts) > 1:
        return "harness.cli" if parts[1] == "cli" else f"harness.{parts[1]}"
    return parts[0]


def package_modules() -> list[tuple[str, Path, bool]]:
    out = []
    for folder in PACKAGE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            out.append((".".join(parts[:-1] if is_package else parts), path, is_package))
    return out


def imported_modules(module: str, path: Path, is_package: bool) -> list[tuple[int, str]]:
    """(line, module below facebench) of every import of the package's own modules in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.removeprefix("facebench.")) for a in node.names
                      if a.name.startswith("facebench.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("facebench."):
                    found.append((node.lineno, node.module.removeprefix("facebench.")))
                continue
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            found += [(node.lineno, target)] if node.module else [(node.lineno, f"{target}.{a.name}") for a in node.names]
    return found


MODULES = package_modules()


def test_every_layer_is_known():
    assert {layer_of(module) for module, _, _ in MODULES} <= set(ALLOWED)


@pytest.mark.parametrize("module,path,is_package", MODULES, ids=[m for m, _, _ in MODULES])
def test_imports_follow_the_layers(module, path, is_package):
    own = layer_of(module)
    wrong = [f"{path.relative_to(ROOT)}:{line} imports facebench.{target} ({layer_of(target)})"
             for line, target in imported_modules(module, path, is_package)
             if layer_of(target) != own and layer_of(target) not in ALLOWED[own]]
    assert not wrong, f"{own} may import only {sorted(ALLOWED[own])}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("module,path,is_package", MODULES, ids=[m for m, _, _ in MODULES])
def test_own_modules_are_imported_relatively(module, path, is_package):
    absolute = [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(ast.parse(path.read_text()))
                if (isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("facebench"))
                or (isinstance(node, ast.Import) and any(a.name.startswith("facebench") for a in node.names))]
    assert not absolute, "import the package's own modules relatively: " + ", ".join(absolute)


def test_the_checker_sees_a_wrong_import(tmp_path):
    wrong = tmp_path / "wrong.py"
    wrong.write_text("from ...harness.run import runner\n")
    assert imported_modules("detectors.eyes.wrong", wrong, False) == [(1, "harness.run")]
    assert layer_of("harness.run") not in ALLOWED["detectors"]
