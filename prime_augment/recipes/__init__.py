"""The bundled scripts behind the ``prime-augment`` command; they import the library, never copy it.

- :mod:`.cli`: the dispatcher (one subcommand per recipe module, imported only when run);
- :mod:`.benchmark`: data, models, the training engine, ``train``, ``evaluate``, corruption sets;
- :mod:`.studies`: the method's studies (filling level, margins, sweeps, SparseFool, coverage);
- :mod:`.showcase`: ``demo``, ``preview`` and the gallery.
"""
