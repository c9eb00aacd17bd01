"""The benchmark: data, models, the training engine, ``train``, ``evaluate`` and the corruption sets.

``train`` fits a classifier with PRIME, AugMix or no augmentation (:mod:`.engine` is the loop);
``evaluate`` scores it on clean and common-corruption data (:mod:`.corruptions` builds the sets, with
the ``builtin``, ``imagecorruptions`` and ``cifar10c`` backends). The studies and the showcase build on
these modules; nothing here imports them.
"""
