"""Dependencies point down: a lower layer never imports an upper one (read from the source).

``common/`` imports nothing of this project; ``lightning_modules/`` and ``reports/`` import
``common/`` but never ``benchmarks/``; ``lightning_modules/`` and ``reports/`` do not import
each other's upper layer either (reports never trains). Checked on every import statement,
also the ones inside functions, which a lazy import would otherwise hide.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("common", "lightning_modules", "reports", "benchmarks", "hydra_plugins")
FORBIDDEN = {
    "common": {"lightning_modules", "reports", "benchmarks", "hydra_plugins"},
    "lightning_modules": {"reports", "benchmarks", "hydra_plugins"},
    "reports": {"lightning_modules", "benchmarks", "hydra_plugins"},
}


def imported_packages(path: Path) -> set[tuple[int, str]]:
    """(line, top-level package) of every absolute import in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {(node.lineno, a.name.split(".")[0]) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_no_upper_layer(layer):
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"no sources under {layer}/"
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {package}"
        for path in files
        for line, package in sorted(imported_packages(path))
        if package in FORBIDDEN[layer]
    ]
    assert bad == []


def test_the_check_sees_a_lazy_import(tmp_path):
    """The planted fault: an import inside a function, as datasets.py once had."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from benchmarks.cache import cached\n    import reports.x\n")
    assert imported_packages(source) == {(2, "benchmarks"), (3, "reports")}
    assert {p for _, p in imported_packages(ROOT / "reports" / "collect.py")} & set(PROJECT) == {
        "common",
        "reports",
    }
