"""``python -m prime_augment ...`` is the ``prime-augment`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
