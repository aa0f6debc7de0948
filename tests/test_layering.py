"""Every import points down the stack, and the data pipelines need only the bottom layers.

fidelity/units/files/version -> mp_conventions -> data -> model -> inference -> calculator -> hub -> models
-> hull/training -> finetuning -> cli/package; imports under ``if TYPE_CHECKING:`` are for annotations only.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "fidelity": 0,
    "units": 0,
    "files": 0,
    "version": 0,
    "mp_conventions": 0.5,
    "data": 1,
    "model": 2,
    "inference": 3,
    "calculator": 3.5,
    "hub": 4,
    "models": 5,
    "hull": 6,
    "training": 6,
    "finetuning": 7,
    "cli": 8,
    "__init__": 9,
    "__main__": 9,
}
PIPELINES_MAY_IMPORT = {"data", "fidelity", "files", "mp_conventions", "units"}


def _runtime_imports(path: Path) -> list[tuple[str, int]]:
    """``universal_mfp`` modules imported by ``path``, outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "universal_mfp":
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "universal_mfp"]
    return found


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_package_imports_point_down_the_stack():
    upward = []
    for path in sorted((ROOT / "universal_mfp").rglob("*.py")):
        relative = path.relative_to(ROOT / "universal_mfp").with_suffix("").parts
        me = relative[0]
        assert me in LAYERS, f"{path}: add its component {me!r} to the layer table"
        for module, line in _runtime_imports(path):
            target = _component(module)
            if target == me:
                continue
            if LAYERS[target] >= LAYERS[me]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(upward)


def test_data_pipelines_need_only_data_and_the_bottom_layers():
    wrong = []
    for path in sorted((ROOT / "data_pipelines").glob("*.py")):
        for module, line in _runtime_imports(path):
            if _component(module) not in PIPELINES_MAY_IMPORT:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)
