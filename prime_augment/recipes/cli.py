"""The ``prime-augment`` command: one subcommand per bundled recipe.

Subcommands are imported only when run, so ``prime-augment --help`` is instant and a missing
optional dependency of one recipe never breaks another. Each recipe module provides
``build_parser()`` (whose epilog holds an example) and ``main(argv) -> int``.

A user's mistake is one line on stderr, ``prime-augment COMMAND: message``, and exit status 2 (as
argparse's own errors): a recipe reports it by raising ``SystemExit("message")`` (or
:class:`~prime_augment.recipes._common.CommandExit` for another status). Ctrl+C is one line and status
130. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

_B, _S, _V = (f"prime_augment.recipes.{g}." for g in ("benchmark", "studies", "showcase"))
#: name -> (module, one-line description); the order is the order of ``--help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": (_B + "train", "train a classifier with PRIME, AugMix or no augmentation"),
    "evaluate": (_B + "evaluate", "clean and common-corruption accuracy, mCE, BN adaptation"),
    "make-corruptions": (_B + "corruptions", "build a CIFAR-10-C-format corruption set"),
    "strength-sweep": (_S + "sweep", "train at several PRIME strengths, robustness vs accuracy"),
    "sparsefool": (_S + "sparsefool", "SparseFool attack: fooling rate, % pixels, time"),
    "margins": (_S + "margins", "l2 margins of a saved model along DCT subspaces + plot"),
    "coverage": (_S + "coverage", "corruption coverage of augmentations (Eq. 5.8)"),
    "demo": (_V + "demo", "the study's models on bundled test images corrupted live; a live training run"),
    "preview": (_V + "preview", "gallery of the primitives and PRIME on your images, K x strength grids"),
    "make-containers": (_S + "containers", "synthetic filling-level containers + manifest, or a C-CCM one"),
    "filling-level": (_S + "filling_level", "filling-level classification on unseen containers (C-CCM)"),
    "filling-level-sweep": (_S + "filling_level_sweep", "filling-level sweeps: depth, Beta grid, strategies"),
    "margin-studies": (_S + "margin_studies", "margins: discriminative direction, flipped data, forgetting"),
}


def _usage() -> str:
    from .. import __version__

    width = max((len(n) for n in COMMANDS), default=10) + 2
    lines = [
        f"usage: prime-augment COMMAND [options]      (prime-augment {__version__})",
        "",
        "PRIME augmentation: training, evaluation and analysis recipes.",
        "",
        "commands:",
        *(f"  {name:<{width}}{desc}" for name, (_, desc) in COMMANDS.items()),
        "",
        "Run 'prime-augment COMMAND --help' for the options and an example of each command.",
        "'python -m prime_augment ...' works the same.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from .. import __version__

        print(f"prime-augment {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"prime-augment: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except SystemExit as e:
        if not isinstance(e.code, str):
            raise  # argparse's exits (2 after its own message, 0 after --help) and sys.exit(n)
        _say(name, e.code)
        return int(getattr(e, "status", 2))
    except KeyboardInterrupt:
        _say(name, "interrupted")
        return 130


def _say(name: str, message: str) -> None:
    """``prime-augment NAME: message`` on stderr (the prefix once, whether the message has it or not)."""
    prefix = f"prime-augment {name}: "
    print(prefix + message.removeprefix(prefix), file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
