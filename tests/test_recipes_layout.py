"""The recipes' layout: benchmark <- studies <- showcase (imports run one way), and the old flat paths."""

from __future__ import annotations

import importlib
import sys

import pytest
from test_imports import PKG, _imports

import prime_augment.recipes as recipes
from prime_augment.recipes.cli import COMMANDS

# a group may import the groups before it, never one after it
ORDER = ("benchmark", "studies", "showcase")


@pytest.mark.parametrize("group", ORDER)
def test_a_group_never_imports_a_later_one(group):
    later = tuple(f"prime_augment.recipes.{g}" for g in ORDER[ORDER.index(group) + 1 :])
    files = sorted((PKG / "recipes" / group).glob("*.py"))
    assert files
    bad = {f.name: sorted(m for m in _imports(f) if later and m.startswith(later)) for f in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_every_command_module_lives_in_a_group_and_imports():
    for module, _ in COMMANDS.values():
        assert module.split(".")[2] in ORDER
        assert hasattr(importlib.import_module(module), "main")


def test_every_moved_module_is_where_the_table_says():
    for old, group in recipes.MOVED.items():
        assert (PKG / "recipes" / group / f"{old}.py").is_file(), old
    assert not [p for p in (PKG / "recipes").glob("*.py") if p.stem in recipes.MOVED]  # no flat copy left


@pytest.mark.parametrize("old", ["engine", "models", "demo", "filling_level"])
def test_an_old_flat_path_is_the_new_module_with_a_warning(old, monkeypatch):
    monkeypatch.delitem(sys.modules, f"prime_augment.recipes.{old}", raising=False)
    new = importlib.import_module(f"prime_augment.recipes.{recipes.MOVED[old]}.{old}")
    with pytest.warns(DeprecationWarning, match=f"recipes.{old} moved to .*{recipes.MOVED[old]}.{old}"):
        alias = importlib.import_module(f"prime_augment.recipes.{old}")
    assert alias is new
    assert new.__spec__.name == new.__name__  # the real module keeps its own spec


def test_an_unknown_flat_name_is_still_missing():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("prime_augment.recipes.no_such_recipe")
