"""The bundled scripts behind the ``prime-augment`` command; they import the library, never copy it.

- :mod:`.cli`: the dispatcher (one subcommand per recipe module, imported only when run);
- :mod:`.benchmark`: data, models, the training engine, ``train``, ``evaluate``, corruption sets;
- :mod:`.studies`: the method's studies (filling level, margins, sweeps, SparseFool, coverage);
- :mod:`.showcase`: ``demo``, ``preview`` and the gallery.

The flat module paths of earlier releases (``prime_augment.recipes.engine``, ``.models``, ``.demo``,
...) still import, as the same module objects, with a :class:`DeprecationWarning` naming the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings

_GROUPS = {
    "benchmark": "data models engine train evaluate corruptions _cifar10c public_prime offline",
    "studies": "filling_level filling_level_sweep containers margins margin_studies sweep coverage "
    "sparsefool _analysis_cli",
    "showcase": "demo preview gallery",
}
#: old flat module name -> the subpackage that holds it now.
MOVED: dict[str, str] = {name: group for group, names in _GROUPS.items() for name in names.split()}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``prime_augment.recipes.<old>`` as the module at its new path (the same object)."""

    def __init__(self) -> None:
        self._specs: dict[str, importlib.machinery.ModuleSpec] = {}  # alias -> the real module's own

    def find_spec(self, fullname, path=None, target=None):
        package, _, leaf = fullname.rpartition(".")
        if package != __name__ or leaf not in MOVED:
            return None
        new = f"{__name__}.{MOVED[leaf]}.{leaf}"
        warnings.warn(f"{fullname} moved to {new}", DeprecationWarning, stacklevel=2)
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        leaf = spec.name.rpartition(".")[2]
        module = importlib.import_module(f"{__name__}.{MOVED[leaf]}.{leaf}")
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module):
        # the import system stamped the alias's spec on the real module: give it back its own
        module.__spec__ = self._specs.pop(module.__spec__.name)


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())
