"""The showcase: ``demo`` (the study's models on bundled images), ``preview`` and its ``gallery``."""
