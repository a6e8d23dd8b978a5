"""The import rules of docs/architecture.md hold in the code, and the device path stays light."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.test_imports import heavy_in, modules_loaded_after

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "forecaster"


def allowed_imports() -> dict[str, set[str]]:
    """The 'may import' column of docs/architecture.md, per package."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("## Who owns what", 1)[1].split("\n\n")[1]
    rows = re.findall(r"^\| (\w+) \| .* \| ([\w ,]+) \|$", table, flags=re.MULTILINE)
    rules = {name: {p.strip() for p in allowed.split(",")} for name, allowed in rows[1:]}
    return {
        name: set(rules) if allowed == {"everything"} else allowed
        for name, allowed in rules.items()
    }


def layer_of(module: str, packages: set[str]) -> str:
    """'forecaster.tune.config' -> 'tune'; top-level modules are the core."""
    if module == "forecaster.__main__":  # `python -m forecaster` is the command line
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in packages else "core"


def forecaster_imports(path: Path) -> set[str]:
    """Every forecaster module a file imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "forecaster"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "forecaster":
            found.add(str(node.module))
    return found


def test_the_table_names_every_package():
    rules = allowed_imports()
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert set(rules) == packages | {"core"}


def test_imports_point_one_way():
    rules = allowed_imports()
    packages = set(rules) - {"core"}
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        layer = layer_of(module, packages)
        for imported in forecaster_imports(path):
            target = layer_of(imported, packages)
            if target != layer and target not in rules[layer]:
                broken.append(f"{module} ({layer}) imports {imported} ({target})")
    assert broken == []


def test_the_rule_check_sees_a_violation(tmp_path):
    # The checker itself must find an import the table forbids.
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from forecaster.tune.config import TuneConfig\n")
    imported = forecaster_imports(bad)
    packages = set(allowed_imports()) - {"core"}
    assert {layer_of(m, packages) for m in imported} == {"tune"}
    assert "tune" not in allowed_imports()["device"]


def test_the_device_path_loads_no_training_library():
    loaded = modules_loaded_after(
        "import forecaster.device.predictor, forecaster.device.predict_csv, "
        "forecaster.device.stream, forecaster.device.bench"
    )
    assert "forecaster.device.predictor" in loaded
    assert heavy_in(loaded) == set()
