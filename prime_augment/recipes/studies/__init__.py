"""The method's studies: filling level (C-CCM), margins, strength sweeps, SparseFool and coverage.

Each module is one ``prime-augment`` command built on :mod:`prime_augment.recipes.benchmark` and the
:mod:`prime_augment.analysis` library.
"""
