"""The bundled scripts behind the ``prime-augment`` command; they import the library, never copy it."""
