"""Plumbing shared by the recipes: devices, run directories, atomic writes, environment records."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import sys
import tempfile
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


def _atomic_write(path: Path, write) -> None:
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


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; a ``--config FILE.yaml`` (if the parser has it) supplies defaults.

    Values given on the command line win over the file; unknown keys in the file are an error
    naming them.
    """
    args = parser.parse_args(argv)
    cfg_path = getattr(args, "config", None)
    if not cfg_path:
        return args
    try:
        import yaml
    except ImportError as e:  # pragma: no cover
        raise SystemExit("--config needs PyYAML: pip install 'prime-augment[recipes]'") from e
    with open(cfg_path) as f:
        cfg = yaml.safe_load(f) or {}
    if not isinstance(cfg, dict):
        raise SystemExit(f"--config {cfg_path}: expected a mapping of option names to values")
    known = {a.dest for a in parser._actions}
    unknown = sorted(k for k in (key.replace("-", "_") for key in cfg) if k not in known)
    if unknown:
        raise SystemExit(f"--config {cfg_path}: unknown option(s) {unknown}")
    parser.set_defaults(**{k.replace("-", "_"): v for k, v in cfg.items()})
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
