"""The ``prime-augment`` command (kept here for ``prime_augment.cli:main``); it lives in
:mod:`prime_augment.recipes.cli`."""

from .recipes.cli import COMMANDS, main

__all__ = ["COMMANDS", "main"]
