"""The package's import rules (DESIGN.md §2), read from the source: imports run one way.

- ``functional/`` (the math) imports nothing of ours but its own modules (``functional/_random`` holds
  the generator-aware draws);
- the transforms and the rest of the library (the top-level modules) never import ``recipes`` or
  ``benchmarks``; only the command dispatcher (``cli.py``, ``__main__.py``) reaches the recipes;
- ``analysis/`` is a library: it never imports ``recipes`` (the commands) or ``benchmarks``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "prime_augment"


def _imports(path: Path) -> set[str]:
    """Every ``prime_augment`` module ``path`` imports (absolute dotted names), at any depth of the file."""
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    package = parts[:-1]  # the package a relative import starts from (also for an __init__.py)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "prime_augment"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "prime_augment":
                continue
            found.add(mod)
            found |= {f"{mod}.{a.name}" for a in node.names}  # `from . import _random` names a module
    return found


def _files(pattern: str) -> list[Path]:
    return sorted(PKG.glob(pattern))


def _offending(files: list[Path], allowed) -> dict[str, list[str]]:
    bad = {}
    for f in files:
        wrong = sorted(m for m in _imports(f) if not allowed(m))
        if wrong:
            bad[str(f.relative_to(PKG.parent))] = wrong
    return bad


def test_functional_imports_only_itself():
    def allowed(m: str) -> bool:
        return m.startswith("prime_augment.functional")

    assert _offending(_files("functional/*.py"), allowed) == {}


def test_the_library_never_imports_the_commands():
    library = [f for f in _files("*.py") if f.name not in ("cli.py", "__main__.py")]
    assert library, "no top-level modules found"

    def allowed(m: str) -> bool:
        return not m.startswith(("prime_augment.recipes", "prime_augment.benchmarks"))

    assert _offending(library, allowed) == {}


def test_analysis_is_a_library():
    def allowed(m: str) -> bool:
        return not m.startswith(("prime_augment.recipes", "prime_augment.benchmarks"))

    assert _offending(_files("analysis/*.py"), allowed) == {}


@pytest.mark.parametrize(
    ("source", "module", "expect"),
    [
        ("from ..recipes import _common\n", "analysis/x.py", "prime_augment.recipes._common"),
        ("from . import _sampling\n", "x.py", "prime_augment._sampling"),
        ("import prime_augment.recipes.demo\n", "functional/x.py", "prime_augment.recipes.demo"),
        ("def f():\n    from .models import load_model\n", "recipes/x.py", "prime_augment.recipes.models"),
    ],
)
def test_the_reader_finds_relative_absolute_and_local_imports(tmp_path, monkeypatch, source, module, expect):
    fake = tmp_path / "prime_augment" / module
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(source)
    monkeypatch.setattr(__import__(__name__), "PKG", tmp_path / "prime_augment")
    assert expect in _imports(fake)
