"""Plumbing shared by the recipes: devices, run directories, atomic writes, environment records."""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import re
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def fraction(text: str) -> float:
    """An argparse type: a finite number, or a fraction such as ``8/255``."""
    try:
        num, sep, den = str(text).partition("/")
        value = float(num) / float(den) if sep else float(num)
    except (ValueError, ZeroDivisionError) as e:
        raise argparse.ArgumentTypeError(f"expected a number or a fraction like 8/255, got {text!r}") from e
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


class CommandExit(SystemExit):
    """A one-line outcome of a command with its exit status (``prime-augment`` prints the message).

    ``SystemExit("message")`` is the recipes' way to report a user's mistake: the ``prime-augment``
    command prints ``prime-augment COMMAND: message`` on stderr and exits with status 2, as argparse
    does. This subclass carries another status (130 after Ctrl+C, 0 for "nothing to do").
    """

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def number(
    kind: type = float,
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
):
    """An argparse type for a numeric option: ``kind`` (``int`` or ``float``), finite, within the bounds.

    The argparse error names the option, the bounds and the value given
    (``argument --lr: expected a number > 0, got 'nan'``). The named ones below cover most options.
    """
    word = "an integer" if kind is int else "a number"
    bounds = [f"{'>' if open_low else '>='} {low:g}"] if low is not None else []
    bounds += [f"{'<' if open_high else '<='} {high:g}"] if high is not None else []
    expected = f"{word} {' and '.join(bounds)}" if bounds else f"a finite {word.split()[-1]}"

    def parse(text: str | int | float):
        try:  # an int option refuses 2.5 (a float from a --config file) as it refuses '2.5'
            value = None if kind is int and isinstance(text, float) else kind(text)
        except (TypeError, ValueError):
            value = None
        ok = value is not None and math.isfinite(value)
        ok = ok and (low is None or (value > low if open_low else value >= low))
        ok = ok and (high is None or (value < high if open_high else value <= high))
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse's fallback message names the type
    return parse


#: argparse types: counts and sizes (``>= 1``), counts that may be 0, seeds, any finite number, ...
positive_int = number(int, 1)
nonneg_int = number(int, 0)
finite_float = number(float)
positive_float = number(float, 0, open_low=True)
nonneg_float = number(float, 0)
open_unit = number(float, 0, 1, open_low=True, open_high=True)


def short_error(e: BaseException) -> str:
    """``Type: first sentence`` of an exception from a library (torch's unpickling errors run on)."""
    lines = str(e).strip().splitlines()
    first = re.split(r"(?<=[.;])\s", lines[0], maxsplit=1)[0] if lines else ""
    return f"{type(e).__name__}: {first}"


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto``; a clear error when CUDA is asked for but absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return dev


def device_name(device: torch.device | str) -> str:
    """The GPU's name, or the CPU model from ``/proc/cpuinfo`` (``platform.processor()`` is empty there)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def environment(device: torch.device | str | None = None) -> dict[str, Any]:
    """Versions, device and date, written next to every result."""
    from .. import __version__

    dev = torch.device(device) if device is not None else torch.device("cpu")
    info: dict[str, Any] = {
        "prime_augment": __version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": str(dev),
        "device_name": device_name(dev),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
    }
    try:
        import torchvision

        info["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover
        pass
    return info


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import: os.umask is process-wide, not thread-safe


@contextlib.contextmanager
def sigint_deferred():
    """Ctrl+C inside the block waits for its end, then raises ``KeyboardInterrupt``: a file being written
    is finished (a KeyboardInterrupt inside ``torch.save`` surfaced as a RuntimeError of its zip writer).

    Only in the main thread, and only while Python's default SIGINT handler is installed.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _atomic_write(path: Path, write) -> None:
    with sigint_deferred():
        _atomic_write_now(path, write)


def _atomic_write_now(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions of a new file
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then an atomic rename."""
    _atomic_write(Path(path), lambda f: torch.save(obj, f))


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (indented, sorted keys)."""
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n"
    _atomic_write(Path(path), lambda f: f.write(text.encode()))


def write_text(path: str | os.PathLike, text: str) -> None:
    _atomic_write(Path(path), lambda f: f.write(text.encode()))


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


_MARKUP = (
    (re.compile(r":[a-z]+:`~?([^`<]*?)\s*(?:<[^`>]*>)?`"), None),  # :func:`x`, :mod:`~a.b`, :ref:`t <x>`
    (re.compile(r"``(.+?)``", re.S), r"\1"),  # ``literal``
    (re.compile(r"\*\*(\S.*?)\*\*"), r"\1"),  # **strong**
)


def _role(m: re.Match) -> str:
    text = m.group(1)
    return text.rsplit(".", 1)[-1] if m.group(0).split("`", 1)[1].startswith("~") else text


def plain_text(text: str) -> str:
    """Terminal text of reStructuredText: ``literals``, :role:`targets` and **strong** unmarked."""
    for pattern, repl in _MARKUP:
        text = pattern.sub(repl if repl is not None else _role, text)
    return text


class PlainHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` in plain text: the descriptions' line breaks kept, their reStructuredText markup removed."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(plain_text(text))

    def _expand_help(self, action: argparse.Action) -> str:
        return plain_text(super()._expand_help(action))


def plain_help(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give ``parser`` and its sub-command parsers :class:`PlainHelpFormatter` (returns ``parser``)."""
    stack = [parser]
    while stack:
        p = stack.pop()
        p.formatter_class = PlainHelpFormatter
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    return parser


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; a ``--config FILE.yaml`` (if the parser has it) supplies defaults.

    Values given on the command line win over the file; unknown keys in the file are an error
    naming them, and the file's values pass the options' types (``lr: .nan`` is refused as ``--lr nan``
    is). Every command parses here: its ``--help`` is plain text (:func:`plain_help`).
    """
    args = plain_help(parser).parse_args(argv)
    cfg_path = getattr(args, "config", None)
    if not cfg_path:
        return args
    try:
        import yaml
    except ImportError as e:  # pragma: no cover
        raise SystemExit("--config needs PyYAML: pip install 'prime-augment[recipes]'") from e
    try:
        with open(cfg_path) as f:
            cfg = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SystemExit(f"--config {cfg_path}: cannot read it ({e})") from e
    if not isinstance(cfg, dict):
        raise SystemExit(f"--config {cfg_path}: expected a mapping of option names to values")
    actions = {a.dest: a for a in parser._actions}
    cfg = {str(k).replace("-", "_"): v for k, v in cfg.items()}
    unknown = sorted(k for k in cfg if k not in actions)
    if unknown:
        raise SystemExit(f"--config {cfg_path}: unknown option(s) {unknown}")
    for key, value in cfg.items():
        kind = actions[key].type
        if callable(kind) and value is not None:
            try:
                for v in value if isinstance(value, list) else [value]:
                    kind(v)
            except (argparse.ArgumentTypeError, TypeError, ValueError) as e:
                raise SystemExit(f"--config {cfg_path}: {key}: {e}") from e
    parser.set_defaults(**cfg)
    return parser.parse_args(argv)


def comma_subset(text: str, option: str, known: Sequence[str]) -> list[str]:
    """The names in a comma-separated option value, each one of ``known`` (else ``SystemExit``)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in known]
    if bad or not names:
        unknown = f" (unknown: {bad})" if bad else ""
        raise SystemExit(f"--{option} {text!r}: expected a comma-separated subset of {tuple(known)}{unknown}")
    return names


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A markdown table."""
    fmt = [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in r] for r in rows]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in fmt]
    return "\n".join(out)
