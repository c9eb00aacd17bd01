"""Filling-level data: the manifest format, its reader, synthetic containers, and a C-CCM converter.

**The manifest** (what ``prime-augment filling-level`` reads) is a CSV file with the header
``path,container,filling_level,S1,S2,S3`` (other columns are allowed and ignored):

* ``path`` — an image file, relative to the manifest's folder (or absolute);
* ``container`` — the id of the container instance in the image (accuracy is reported per container);
* ``filling_level`` — ``0``, ``50``, ``90`` (percent of the container's capacity) or ``unknown`` (the
  content cannot be seen, e.g. an opaque or wrapped container);
* ``S1``, ``S2``, ``S3`` — the image's role in each split: ``train``, ``test``, or ``none`` (not used in
  that split). A container has one role per split (a container split between train and test would leak).

:func:`read_manifest` checks all of it and raises a :class:`ManifestError` naming the line, the data row
and the column of each problem (missing columns, unknown labels, missing files, bad split values, a
container with two roles in a split).

**Synthetic containers** (``prime-augment make-containers``, :func:`make_containers`): drawn glasses,
cups, bottles and flasks of six shapes and six glass tints, with numpy at 4x supersampling, on varied
backgrounds (gradients, stripes, tiles, blotches, a table top). Each (shape, tint) pair is a container
id, e.g. ``wine-amber``. The filling (water, rice or pasta) fills 0 %, 50 % or 90 % of the container's
*volume* (a body of revolution: the fill height depends on the shape, e.g. 90 % of a bottle stops below
the neck), with +-4 % pouring jitter; the liquid surface is drawn as an ellipse. ``unknown`` is a
container whose content is hidden: an opaque sleeve (paper, cardboard or skin colours, shaded as a
cylinder) covers the cavity up to at least 93 % of its height, whatever the level under it. Every
container gets the same number of images per class. The default shifts:

* ``S1`` — unseen colours: containers tinted ``amber`` or ``violet`` are tested, the others train;
* ``S2`` — unseen shapes: ``tapered`` glasses and ``wine`` glasses are tested, the others train;
* ``S3`` — both: the test containers have an unseen shape *and* an unseen colour; the training ones
  a seen shape and a seen colour; the rest is ``none``.

**The public C-CCM crops** (§5.5 of the method) cannot be downloaded here. ``--from-ccm DIR`` writes a
manifest for crops arranged as::

    DIR/
      splits.csv                  header container,S1,S2,S3 (train / test / none per container)
      <container>/<level>/*.png   level folder: 0, 50, 90, unknown
                                  (aliases: empty, half, half-full, full, opaque)

(``.jpg``/``.jpeg``/``.png``/``.bmp``/``.webp``, nested folders allowed). If the archive you downloaded
is organised differently, move the crops into this tree (one folder per container and level) or write the
manifest CSV yourself; the manifest is the only thing the recipe reads.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .._common import (
    PlainHelpFormatter,
    _atomic_write,
    comma_subset,
    environment,
    nonneg_int,
    positive_int,
    write_json,
    write_text,
)

__all__ = [
    "COLOURS",
    "LEVELS",
    "MANIFEST_COLUMNS",
    "SHAPES",
    "SPLITS",
    "Manifest",
    "ManifestError",
    "ccm_manifest",
    "container_profile",
    "load_images",
    "make_containers",
    "read_manifest",
    "render_container",
    "write_manifest",
]

#: the classes, in label order
LEVELS = ("0", "50", "90", "unknown")
SPLITS = ("S1", "S2", "S3")
ROLES = ("train", "test", "none")
MANIFEST_COLUMNS = ("path", "container", "filling_level", *SPLITS)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
#: folder names accepted by the C-CCM converter, by class
LEVEL_ALIASES = {
    "0": "0",
    "empty": "0",
    "50": "50",
    "half": "50",
    "half-full": "50",
    "half_full": "50",
    "90": "90",
    "full": "90",
    "unknown": "unknown",
    "opaque": "unknown",
}


# ---------------------------------------------------------------------------------------------- manifest
class ManifestError(ValueError):
    """A malformed manifest; the message names the file, line, data row and column."""


@dataclass
class Manifest:
    """A validated manifest.

    Attributes:
        path: the CSV file.
        paths: absolute image paths, one per data row.
        containers: container ids.
        labels: class indices into :data:`LEVELS`.
        roles: ``{split: [role per row]}``, role in :data:`ROLES`.
    """

    path: Path
    paths: list[str]
    containers: list[str]
    labels: np.ndarray
    roles: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    def indices(self, split: str, role: str) -> np.ndarray:
        """Row indices of ``split`` with ``role`` (``train`` or ``test``)."""
        if split not in self.roles:
            raise ValueError(f"--split must be one of {SPLITS}, got {split!r}")
        return np.array([i for i, r in enumerate(self.roles[split]) if r == role], dtype=np.int64)

    def containers_of(self, rows: Sequence[int]) -> list[str]:
        """The distinct containers of ``rows``, sorted."""
        return sorted({self.containers[int(i)] for i in rows})


def _where(path: Path, row: int, column: str) -> str:
    return f"{path}: line {row + 1} (data row {row}), column {column!r}"


def read_manifest(path: str | os.PathLike, *, check_files: bool = True) -> Manifest:
    """Read and validate a filling-level manifest (see the module docstring for the format).

    Args:
        path: the CSV file; relative image paths are relative to its folder.
        check_files: require every image file to exist.

    Returns:
        The :class:`Manifest`.

    Raises:
        ManifestError: naming the line, data row and column of every problem found (up to 10).
        FileNotFoundError: no such manifest file.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> text = "path,container,filling_level,S1,S2,S3\\na.png,cup,full,train,test,none\\n"
        >>> _ = (d / "m.csv").write_text(text)
        >>> read_manifest(d / "m.csv", check_files=False)
        Traceback (most recent call last):
        ...
        prime_augment.recipes.studies.containers.ManifestError: bad manifest:
          ...m.csv: line 2 (data row 1), column 'filling_level': unknown label 'full' (expected one of ...)
    """
    path = Path(path)
    reader = _manifest_reader(path)
    errors: list[str] = []
    paths: list[str] = []
    containers: list[str] = []
    labels: list[int] = []
    roles: dict[str, list[str]] = {s: [] for s in SPLITS}
    first_role: dict[tuple[str, str], tuple[str, int]] = {}
    for row, rec in enumerate(reader, start=1):
        if None in rec:
            errors.append(f"{path}: line {row + 1} (data row {row}): more fields than the header's")
            continue
        vals = {c: (rec.get(c) or "").strip() for c in MANIFEST_COLUMNS}
        full = Path(vals["path"]) if os.path.isabs(vals["path"]) else path.parent / vals["path"]
        errors += _field_errors(path, row, vals, full, check_files)
        row_roles, role_errors = _split_roles(path, row, vals, first_role)
        errors += role_errors
        for split, role in row_roles.items():
            roles[split].append(role)
        paths.append(str(full))
        containers.append(vals["container"])
        labels.append(LEVELS.index(vals["filling_level"]) if vals["filling_level"] in LEVELS else -1)
        if len(errors) >= 10:
            break
    if errors:
        more = " (stopped after 10 problems)" if len(errors) >= 10 else ""
        raise ManifestError(f"bad manifest{more}:\n  " + "\n  ".join(errors))
    if not paths:
        raise ManifestError(f"{path}: no data rows after the header")
    return Manifest(path, paths, containers, np.asarray(labels, dtype=np.int64), roles)


def _manifest_reader(path: Path) -> csv.DictReader:
    """A reader of the manifest's data rows, its header checked (and stripped)."""
    if not path.is_file():
        raise FileNotFoundError(f"--manifest {path}: no such file")
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in MANIFEST_COLUMNS if c not in header]
    if missing:
        raise ManifestError(
            f"{path}: line 1 (header), column(s) {', '.join(repr(c) for c in missing)} missing "
            f"(the header must hold {','.join(MANIFEST_COLUMNS)}; found {','.join(header) or 'nothing'})"
        )
    reader.fieldnames = header
    return reader


def _field_errors(path: Path, row: int, vals: dict[str, str], full: Path, check_files: bool) -> list[str]:
    """The problems of a data row's ``path``, ``container`` and ``filling_level`` (``full``: the image)."""
    errors = []
    if not vals["path"]:
        errors.append(f"{_where(path, row, 'path')}: empty")
    elif check_files and not full.is_file():
        errors.append(f"{_where(path, row, 'path')}: no file {vals['path']!r} (looked for {full})")
    if not vals["container"]:
        errors.append(f"{_where(path, row, 'container')}: empty")
    if vals["filling_level"] not in LEVELS:
        errors.append(
            f"{_where(path, row, 'filling_level')}: unknown label {vals['filling_level']!r} "
            f"(expected one of {', '.join(LEVELS)})"
        )
    return errors


def _split_roles(
    path: Path, row: int, vals: dict[str, str], first_role: dict[tuple[str, str], tuple[str, int]]
) -> tuple[dict[str, str], list[str]]:
    """A data row's valid roles ``{split: role}`` and the problems of its split columns.

    ``first_role`` maps ``(split, container)`` to the first ``(role, data row)`` seen, and is updated: a
    container that is ``train`` in one row and ``test`` in another is a problem.
    """
    roles, errors = {}, []
    for s in SPLITS:
        r = vals[s].lower()
        if r not in ROLES:
            errors.append(
                f"{_where(path, row, s)}: bad split value {vals[s]!r} (expected train, test or none)"
            )
            continue
        key = (s, vals["container"])
        if r != "none" and key in first_role and first_role[key][0] != r:
            errors.append(
                f"{_where(path, row, s)}: container {vals['container']!r} is {r!r} here but "
                f"{first_role[key][0]!r} in data row {first_role[key][1]} "
                "(a container has one role per split)"
            )
        elif r != "none":
            first_role.setdefault(key, (r, row))
        roles[s] = r
    return roles, errors


def write_manifest(
    path: str | os.PathLike, rows: Sequence[dict[str, Any]], extra: Sequence[str] = ()
) -> None:
    """Write a manifest CSV atomically (columns :data:`MANIFEST_COLUMNS` then ``extra``)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*MANIFEST_COLUMNS, *extra], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in (*MANIFEST_COLUMNS, *extra)})
    write_text(path, buf.getvalue())


def load_images(manifest: Manifest, rows: Sequence[int], size: int, *, progress: bool = True) -> np.ndarray:
    """The images of ``rows`` as a uint8 array ``[N, size, size, 3]`` (RGB, resized to a square).

    A file that cannot be read raises a :class:`ManifestError` naming its row and the ``path`` column.
    """
    out = np.empty((len(rows), size, size, 3), dtype=np.uint8)
    for k, i in enumerate(tqdm(rows, desc="images", leave=False, disable=not progress)):
        i = int(i)
        try:
            with Image.open(manifest.paths[i]) as im:
                im = im.convert("RGB")
                if im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
                out[k] = np.asarray(im)
        except (OSError, ValueError) as e:
            raise ManifestError(f"{_where(manifest.path, i + 1, 'path')}: cannot read the image ({e})") from e
    return out


# ---------------------------------------------------------------------------------------------- shapes
#: tint RGB (multiplicative glass filter) and its opacity, by colour name
COLOURS: dict[str, tuple[tuple[float, float, float], float]] = {
    "clear": ((0.92, 0.95, 0.97), 0.12),
    "red": ((0.90, 0.18, 0.16), 0.45),
    "green": ((0.20, 0.75, 0.30), 0.45),
    "blue": ((0.18, 0.38, 0.92), 0.45),
    "amber": ((0.90, 0.58, 0.12), 0.45),
    "violet": ((0.58, 0.22, 0.82), 0.45),
}

#: shape name -> (half-width / cavity height, cavity height / total height); profiles in container_profile
SHAPES: dict[str, tuple[float, float]] = {
    "tumbler": (0.36, 0.94),
    "tapered": (0.40, 0.94),
    "mug": (0.46, 0.93),
    "bottle": (0.30, 0.95),
    "flask": (0.46, 0.95),
    "wine": (0.52, 0.55),
}

FILLINGS = {  # colour, opacity, grain (texture amplitude)
    "water": ((0.55, 0.78, 0.95), 0.45, 0.0),
    "rice": ((0.95, 0.94, 0.88), 0.95, 0.10),
    "pasta": ((0.96, 0.82, 0.40), 0.95, 0.18),
}
SLEEVES = ((0.87, 0.70, 0.58), (0.72, 0.52, 0.38), (0.55, 0.40, 0.28), (0.80, 0.70, 0.50), (0.90, 0.90, 0.86))


def container_profile(shape: str, t: np.ndarray) -> np.ndarray:
    """Half-width of the cavity (fraction of its widest) at normalised height ``t`` (0 bottom, 1 rim)."""
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    if shape in ("tumbler", "mug"):
        return np.ones_like(t)
    if shape == "tapered":
        return 0.62 + 0.38 * t
    if shape == "bottle":  # body, a smooth shoulder, a neck
        s = np.clip((t - 0.55) / 0.22, 0.0, 1.0)
        return 1.0 - 0.68 * (3 * s**2 - 2 * s**3)
    if shape == "flask":  # Erlenmeyer: conical body, neck
        return np.maximum(1.0 - 0.72 * t / 0.7, 0.28)
    if shape == "wine":  # a bowl, widest above the middle
        return 0.25 + 0.75 * np.sqrt(np.clip(1.0 - ((t - 0.72) / 0.78) ** 2, 0.0, 1.0))
    raise ValueError(f"unknown shape {shape!r}: choose from {tuple(SHAPES)}")


def _fill_height(shape: str, fraction: float) -> float:
    """Normalised height holding ``fraction`` of the volume (a body of revolution: area ~ width^2)."""
    t = np.linspace(0.0, 1.0, 513)
    vol = np.concatenate([[0.0], np.cumsum(container_profile(shape, (t[1:] + t[:-1]) / 2) ** 2)])
    return float(np.interp(fraction * vol[-1], vol, t))


def _background(rng: np.random.Generator, n: int) -> np.ndarray:
    """A varied ``(n, n, 3)`` background in [0, 1]."""
    c1, c2 = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
    yy, xx = np.mgrid[0:n, 0:n] / n
    kind = rng.integers(4)
    if kind == 0:  # linear gradient
        a = rng.uniform(0, 2 * np.pi)
        s = np.cos(a) * xx + np.sin(a) * yy
        s = (s - s.min()) / max(np.ptp(s), 1e-6)
    elif kind == 1:  # stripes
        a, f = rng.uniform(0, np.pi), rng.uniform(2, 9)
        s = 0.5 + 0.5 * np.sin(2 * np.pi * f * (np.cos(a) * xx + np.sin(a) * yy) + rng.uniform(0, 6.3))
    elif kind == 2:  # tiles
        k = int(rng.integers(3, 9))
        s = ((np.floor(xx * k) + np.floor(yy * k)) % 2).astype(np.float64)
    else:  # blotches: smooth random field
        g = rng.uniform(0, 1, (5, 5))
        s = np.asarray(Image.fromarray((g * 255).astype(np.uint8)).resize((n, n), Image.Resampling.BICUBIC))
        s = s / 255.0
    img = c1 * (1 - s[..., None]) + c2 * s[..., None]
    return img


def render_container(
    shape: str,
    colour: str,
    level: str,
    *,
    size: int = 64,
    rng: np.random.Generator,
    supersample: int = 4,
) -> np.ndarray:
    """Draw one image of a container: a uint8 ``(size, size, 3)`` array.

    Args:
        shape: one of :data:`SHAPES`.
        colour: one of :data:`COLOURS` (the glass tint).
        level: one of :data:`LEVELS`; ``unknown`` hides the content under an opaque sleeve.
        size: output side in pixels (>= 16).
        rng: the random generator (pose, scale, background, filling, lighting, noise).
        supersample: drawing resolution factor (anti-aliasing).

    Example:
        >>> import numpy as np
        >>> a = render_container("wine", "amber", "50", size=32, rng=np.random.default_rng(0))
        >>> a.shape, a.dtype
        ((32, 32, 3), dtype('uint8'))
    """
    _check_drawing(shape, colour, level, size)
    n = size * supersample
    img = _background(rng, n)
    f = _frame(shape, n, supersample, rng)
    img = _table(img, f, rng)
    tint, opacity = COLOURS[colour]
    filt = (1 - opacity) + opacity * np.asarray(tint)  # the cavity seen through the glass: a tint
    out = img.copy()
    out[f.inside] = img[f.inside] * filt
    _draw_content(out, img, filt, shape, level, f, supersample, rng)  # also under a sleeve
    _draw_glass(out, shape, colour, f)
    if level == "unknown":
        _draw_sleeve(out, f, rng)
    return _photograph(out, size, supersample, rng)


#: the rim's and the liquid surface's ellipse: vertical semi-axis over half-width
_ELLIPSE = 0.12


def _check_drawing(shape: str, colour: str, level: str, size: int) -> None:
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}: choose from {tuple(SHAPES)}")
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}: choose from {tuple(COLOURS)}")
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}: choose from {LEVELS}")
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")


@dataclass(frozen=True)
class _Frame:
    """Where a container stands on the ``n x n`` drawing canvas, and its cavity per pixel.

    ``yy``, ``xx``: pixel-centre coordinates; ``dx = xx - cx`` (``cx``: the axis); ``t``: normalised
    cavity height per pixel (0 at the cavity's bottom, 1 at the rim); ``w``: the cavity's half-width at
    that height; ``inside``: the cavity's pixels. ``base_y``: the container's bottom (its foot's for a
    wine glass); ``bottom``, ``top``: the cavity's; ``cav_h``: its height; ``half``: its widest
    half-width; ``wall``: the glass thickness.
    """

    n: int
    yy: np.ndarray
    xx: np.ndarray
    cx: float
    dx: np.ndarray
    t: np.ndarray
    w: np.ndarray
    inside: np.ndarray
    base_y: float
    bottom: float
    top: float
    cav_h: float
    half: float
    wall: float


def _frame(shape: str, n: int, supersample: int, rng: np.random.Generator) -> _Frame:
    """Draw the container's size and position (height, base, axis, width) on the canvas."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) + 0.5
    aspect, cav_frac = SHAPES[shape]
    total_h = rng.uniform(0.60, 0.80) * n
    base_y = rng.uniform(0.86, 0.95) * n
    cx = n / 2 + rng.uniform(-0.10, 0.10) * n
    cav_h = total_h * cav_frac
    bottom = base_y - total_h * (1 - cav_frac) if shape == "wine" else base_y - 0.05 * total_h
    half = aspect * cav_h * rng.uniform(0.92, 1.08)
    t = (bottom - yy) / cav_h
    w = half * container_profile(shape, t)
    dx = xx - cx
    inside = (t >= 0) & (t <= 1) & (np.abs(dx) <= w)
    wall = max(1.5 * supersample, 0.07 * half)
    return _Frame(n, yy, xx, cx, dx, t, w, inside, base_y, bottom, bottom - cav_h, cav_h, half, wall)


def _table(img: np.ndarray, f: _Frame, rng: np.random.Generator) -> np.ndarray:
    """A shaded table top behind the container's base."""
    table_y = f.base_y - rng.uniform(0.0, 0.08) * f.n
    table = rng.uniform(0.1, 0.9, 3)
    shade = 1.0 - 0.25 * ((f.yy - table_y) / f.n).clip(0, 1)
    return np.where((f.yy > table_y)[..., None], table * shade[..., None], img)


def _draw_content(
    out: np.ndarray,
    img: np.ndarray,
    filt: np.ndarray,
    shape: str,
    level: str,
    f: _Frame,
    supersample: int,
    rng: np.random.Generator,
) -> None:
    """Pour water, rice or pasta to ``level`` (a random one for ``unknown``) into ``out``, in place.

    ``img``: the scene without the container; ``filt``: the glass tint.
    """
    frac = {"0": 0.0, "50": 0.5, "90": 0.9}.get(level)
    if frac is None:
        frac = float(rng.choice([0.0, 0.5, 0.9]))
    if frac == 0:
        return
    frac = float(np.clip(frac + rng.uniform(-0.04, 0.04), 0.02, 0.98))
    h = _fill_height(shape, frac)
    fc, fa, grain = FILLINGS[("water", "rice", "pasta")[rng.integers(3)]]
    fc = np.clip(np.asarray(fc) * rng.uniform(0.85, 1.1), 0, 1)
    y_s = f.bottom - h * f.cav_h
    w_s = f.half * float(container_profile(shape, h))
    surf = ((f.dx / max(w_s, 1e-6)) ** 2 + ((f.yy - y_s) / (_ELLIPSE * w_s)) ** 2) <= 1.0
    liquid = f.inside & ((f.t <= h) | surf)
    colour_px = np.broadcast_to(fc, (f.n, f.n, 3)).copy()
    if grain > 0:
        g = rng.normal(0, grain, (f.n // supersample, f.n // supersample))
        colour_px *= (1 + np.kron(g, np.ones((supersample, supersample))))[..., None]
    colour_px[surf & f.inside] = np.clip(colour_px[surf & f.inside] * 1.12 + 0.05, 0, 1)
    mix = fa * colour_px + (1 - fa) * img
    out[liquid] = (mix * filt)[liquid]


def _draw_glass(out: np.ndarray, shape: str, colour: str, f: _Frame) -> None:
    """The glass walls (with a mug's handle, a wine glass's stem and foot), the rim and a highlight,
    into ``out``, in place."""
    body = (f.t >= -f.wall / f.cav_h) & (f.t <= 1) & (np.abs(f.dx) <= f.w + f.wall)
    extra = np.zeros((f.n, f.n), dtype=bool)
    if shape == "mug":
        hy, hr = f.bottom - 0.5 * f.cav_h, 0.28 * f.cav_h
        hx = f.cx + f.half + 0.55 * hr
        r = np.hypot(f.xx - hx, (f.yy - hy) * 0.8)
        extra |= (r <= hr) & (r >= hr - 2.2 * f.wall) & (f.xx > f.cx + f.half)
    if shape == "wine":
        extra |= (np.abs(f.dx) <= 0.09 * f.half) & (f.yy >= f.bottom) & (f.yy <= f.base_y)
        foot = ((f.dx / (0.75 * f.half)) ** 2 + ((f.yy - f.base_y) / (0.10 * f.half)) ** 2) <= 1.0
        extra |= foot
    glass_wall = (body & ~f.inside) | extra
    rim_w = f.half * float(container_profile(shape, 1.0))
    rim = np.abs(np.hypot(f.dx / rim_w, (f.yy - f.top) / (_ELLIPSE * rim_w)) - 1.0) <= f.wall / rim_w
    tint = np.asarray(COLOURS[colour][0])
    wall_col = np.clip(tint * 0.55 + 0.10, 0, 1) if colour != "clear" else np.array([0.55, 0.6, 0.65])
    wall_alpha = 0.85
    for m in (glass_wall, rim):
        out[m] = (1 - wall_alpha) * out[m] + wall_alpha * wall_col
    # specular highlight on the left of the glass
    hl = f.inside & (f.dx > -0.75 * f.w) & (f.dx < -0.55 * f.w) & (f.t > 0.08) & (f.t < 0.92)
    out[hl] = 0.55 * out[hl] + 0.45


def _draw_sleeve(out: np.ndarray, f: _Frame, rng: np.random.Generator) -> None:
    """An opaque sleeve (paper, cardboard, skin or a random colour, shaded as a cylinder) over at least
    93 % of the cavity's height, into ``out``, in place."""
    sc = np.asarray(SLEEVES[rng.integers(len(SLEEVES))]) * rng.uniform(0.8, 1.1)
    if rng.uniform() < 0.4:
        sc = rng.uniform(0.15, 0.9, 3)
    t_top = rng.uniform(0.93, 1.0)
    sleeve = (f.t >= -f.wall / f.cav_h) & (f.t <= t_top) & (np.abs(f.dx) <= f.w + f.wall * 1.3)
    cyl = np.sqrt(np.clip(1 - (f.dx / np.maximum(f.w + f.wall * 1.3, 1e-6)) ** 2, 0, 1))
    out[sleeve] = np.clip(sc * (0.6 + 0.4 * cyl[..., None]), 0, 1)[sleeve]


def _photograph(out: np.ndarray, size: int, supersample: int, rng: np.random.Generator) -> np.ndarray:
    """Lighting, the reduction to ``size x size`` (anti-aliasing) and sensor noise: the uint8 image."""
    out = out * rng.uniform(0.85, 1.15) + rng.uniform(-0.06, 0.06)
    small = out.reshape(size, supersample, size, supersample, 3).mean(axis=(1, 3))
    small = small + rng.normal(0, rng.uniform(0.005, 0.025), small.shape)
    return (np.clip(small, 0, 1) * 255 + 0.5).astype(np.uint8)


def _role(attr_unseen: bool) -> str:
    return "test" if attr_unseen else "train"


def split_roles(
    shape: str, colour: str, test_shapes: Sequence[str], test_colours: Sequence[str]
) -> dict[str, str]:
    """The container's role in S1 (unseen colours), S2 (unseen shapes) and S3 (both)."""
    s_new, c_new = shape in test_shapes, colour in test_colours
    s3 = "test" if (s_new and c_new) else ("train" if not (s_new or c_new) else "none")
    return {"S1": _role(c_new), "S2": _role(s_new), "S3": s3}


def make_containers(
    out: str | os.PathLike,
    *,
    size: int = 64,
    per_level: int = 10,
    shapes: Sequence[str] = tuple(SHAPES),
    colours: Sequence[str] = tuple(COLOURS),
    test_shapes: Sequence[str] = ("tapered", "wine"),
    test_colours: Sequence[str] = ("amber", "violet"),
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Draw the synthetic containers into ``out`` and write ``out/manifest.csv``.

    Every (shape, colour) pair is a container with ``per_level`` images of each of the four classes.
    Image ``k`` of a container is drawn from a generator seeded by ``(seed, shape, colour, k)``, so the
    set is reproducible and the same container looks the same in any subset of shapes and colours.

    Args:
        out: output folder (``images/<container>/<level>_<k>.png``, ``manifest.csv``,
            ``containers.json``, ``preview.png``).
        size: image side in pixels.
        per_level: images per container and class.
        shapes, colours: the shapes and tints to draw (see :data:`SHAPES`, :data:`COLOURS`).
        test_shapes, test_colours: the unseen shapes (S2, S3) and colours (S1, S3).
        seed: the seed.
        progress: a progress bar.

    Returns:
        The manifest path.
    """
    _check_selection(shapes, colours, test_shapes, test_colours)
    if per_level < 1:
        raise ValueError(f"per_level must be >= 1, got {per_level}")
    out = Path(out)
    rows: list[dict[str, Any]] = []
    preview: dict[str, np.ndarray] = {}
    jobs = [(s, c, lvl, k) for s in shapes for c in colours for lvl in LEVELS for k in range(per_level)]
    for s, c, lvl, k in tqdm(jobs, desc="containers", disable=not progress, leave=False):
        img, rel = _draw_and_save(out, s, c, lvl, k, size, seed)
        if k == 0 and c == colours[min(len(colours) - 1, list(shapes).index(s) % len(colours))]:
            preview[f"{s}|{lvl}"] = img
        rows.append(
            {
                "path": rel.as_posix(),
                "container": f"{s}-{c}",
                "filling_level": lvl,
                "shape": s,
                "colour": c,
                **split_roles(s, c, test_shapes, test_colours),
            }
        )
    manifest = out / "manifest.csv"
    write_manifest(manifest, rows, extra=("shape", "colour"))
    _preview(preview, shapes, out / "preview.png")
    options = {"size": size, "per_level": per_level, "shapes": list(shapes), "colours": list(colours)}
    options.update(test_shapes=list(test_shapes), test_colours=list(test_colours), seed=seed)
    _write_summary(out / "containers.json", options, rows)
    return manifest


def _check_selection(
    shapes: Sequence[str], colours: Sequence[str], test_shapes: Sequence[str], test_colours: Sequence[str]
) -> None:
    """Known, non-empty shapes and colours; the unseen ones a proper subset of the drawn ones."""
    for name, vals, known in (
        ("shapes", shapes, SHAPES),
        ("colours", colours, COLOURS),
        ("test_shapes", test_shapes, SHAPES),
        ("test_colours", test_colours, COLOURS),
    ):
        bad = [v for v in vals if v not in known]
        if bad or (name in ("shapes", "colours") and not vals):
            raise ValueError(f"{name}: unknown or empty {bad or list(vals)} (choose from {tuple(known)})")
    for name, sub, full in (("test_shapes", test_shapes, shapes), ("test_colours", test_colours, colours)):
        if not set(sub) < set(full):
            raise ValueError(
                f"{name} {list(sub)} must be a proper subset of the drawn {name.split('_')[1]} {list(full)} "
                "(every split needs training and test containers)"
            )


def _draw_and_save(
    out: Path, shape: str, colour: str, level: str, k: int, size: int, seed: int
) -> tuple[np.ndarray, Path]:
    """Image ``k`` of a container and level (seeded by ``(seed, shape, colour, level, k)``), saved as
    ``out/images/<shape>-<colour>/<level>_<k>.png``; returns it and that path relative to ``out``."""
    key = [seed, list(SHAPES).index(shape), list(COLOURS).index(colour), LEVELS.index(level), k]
    img = render_container(shape, colour, level, size=size, rng=np.random.default_rng(key))
    rel = Path("images") / f"{shape}-{colour}" / f"{level}_{k:03d}.png"
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(out / rel)
    return img, rel


def _write_summary(path: Path, options: dict[str, Any], rows: Sequence[dict[str, Any]]) -> None:
    """``containers.json``: the options, the number of images, each split's containers by role."""
    splits = {s: {r: sorted({x["container"] for x in rows if x[s] == r}) for r in ROLES} for s in SPLITS}
    write_json(path, {**options, "images": len(rows), "splits": splits, "environment": environment()})


def _preview(images: dict[str, np.ndarray], shapes: Sequence[str], path: Path) -> None:
    """A grid: one row per shape, one column per class."""
    tiles = [[images[f"{s}|{lvl}"] for lvl in LEVELS] for s in shapes]
    grid = np.concatenate([np.concatenate(r, axis=1) for r in tiles], axis=0)
    _atomic_write(path, lambda f: Image.fromarray(grid).save(f, format="PNG"))


# ---------------------------------------------------------------------------------------------- C-CCM
def ccm_manifest(root: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write ``out`` (a manifest CSV) for C-CCM crops laid out as in the module docstring.

    Paths in the manifest are relative to the manifest's folder when the crops lie below it, absolute
    otherwise.
    """
    root, out = Path(root), Path(out)
    splits_file = root / "splits.csv"
    if not splits_file.is_file():
        raise FileNotFoundError(
            f"--from-ccm {root}: no splits.csv (header container,S1,S2,S3: the role of each container)"
        )
    with open(splits_file, encoding="utf-8-sig", newline="") as f:
        rd = csv.DictReader(f)
        header = [h.strip() for h in (rd.fieldnames or [])]
        missing = [c for c in ("container", *SPLITS) if c not in header]
        if missing:
            raise ManifestError(f"{splits_file}: line 1 (header), column(s) {missing} missing")
        rd.fieldnames = header
        roles: dict[str, dict[str, str]] = {}
        for row, rec in enumerate(rd, start=1):
            cid = (rec["container"] or "").strip()
            if not cid:
                raise ManifestError(f"{_where(splits_file, row, 'container')}: empty")
            for s in SPLITS:
                r = (rec[s] or "").strip().lower()
                if r not in ROLES:
                    raise ManifestError(
                        f"{_where(splits_file, row, s)}: bad split value {rec[s]!r} "
                        "(expected train, test or none)"
                    )
            roles[cid] = {s: rec[s].strip().lower() for s in SPLITS}
    rows: list[dict[str, Any]] = []
    for cid, role in sorted(roles.items()):
        cdir = root / cid
        if not cdir.is_dir():
            raise FileNotFoundError(
                f"--from-ccm {root}: splits.csv names container {cid!r} but {cdir} is missing"
            )
        for lvl_dir in sorted(p for p in cdir.iterdir() if p.is_dir()):
            lvl = LEVEL_ALIASES.get(lvl_dir.name.lower())
            if lvl is None:
                raise ManifestError(
                    f"--from-ccm: {lvl_dir}: unknown level folder {lvl_dir.name!r} "
                    f"(expected one of {sorted(LEVEL_ALIASES)})"
                )
            for dirpath, _, files in sorted(os.walk(lvl_dir)):
                for fname in sorted(files):
                    if fname.lower().endswith(IMAGE_EXTENSIONS):
                        p = Path(dirpath) / fname
                        try:
                            rel = p.resolve().relative_to(out.parent.resolve()).as_posix()
                        except ValueError:
                            rel = str(p.resolve())
                        rows.append({"path": rel, "container": cid, "filling_level": lvl, **role})
    if not rows:
        raise FileNotFoundError(f"--from-ccm {root}: no images under <container>/<level>/")
    write_manifest(out, rows)
    return out


# ---------------------------------------------------------------------------------------------- command
EXAMPLE = """Example (a small synthetic set, then a filling-level run on split S2):
  prime-augment make-containers --out data/containers --size 64 --per-level 10
  prime-augment filling-level --manifest data/containers/manifest.csv --split S2 --epochs 30 \\
      --arch cifar_resnet8 --device cpu --out runs/fl_s2
C-CCM crops arranged as DIR/splits.csv + DIR/<container>/<level>/*.png (level: 0, 50, 90, unknown or
empty, half-full, full, opaque):
  prime-augment make-containers --from-ccm ~/data/C-CCM --out ~/data/C-CCM/manifest.csv
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prime-augment make-containers",
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=PlainHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output folder (with --from-ccm: the manifest CSV to write)")
    p.add_argument(
        "--from-ccm", metavar="DIR", help="write a manifest for C-CCM crops in DIR instead of drawing"
    )
    p.add_argument("--size", type=positive_int, default=64, help="image side in pixels (default 64)")
    p.add_argument(
        "--per-level", type=positive_int, default=10, help="images per container and class (default 10)"
    )
    p.add_argument(
        "--shapes", default=",".join(SHAPES), help=f"shapes to draw (default all: {','.join(SHAPES)})"
    )
    p.add_argument("--colours", default=",".join(COLOURS), help=f"tints (default all: {','.join(COLOURS)})")
    p.add_argument("--test-shapes", default="tapered,wine", help="unseen shapes of S2 and S3")
    p.add_argument("--test-colours", default="amber,violet", help="unseen colours of S1 and S3")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seeds every image drawn (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.from_ccm:
        out = Path(args.out)
        if out.suffix.lower() != ".csv":
            out = out / "manifest.csv"
        try:
            path = ccm_manifest(args.from_ccm, out)
        except (FileNotFoundError, ManifestError) as e:
            raise SystemExit(f"prime-augment make-containers: {e}") from e
        m = read_manifest(path)
        print(f"wrote {path}: {len(m)} images, {len(set(m.containers))} containers")
        return 0
    try:
        path = make_containers(
            args.out,
            size=args.size,
            per_level=args.per_level,
            shapes=comma_subset(args.shapes, "shapes", tuple(SHAPES)),
            colours=comma_subset(args.colours, "colours", tuple(COLOURS)),
            test_shapes=comma_subset(args.test_shapes, "test-shapes", tuple(SHAPES)),
            test_colours=comma_subset(args.test_colours, "test-colours", tuple(COLOURS)),
            seed=args.seed,
            progress=not args.no_progress,
        )
    except ValueError as e:
        raise SystemExit(f"prime-augment make-containers: {e}") from e
    m = read_manifest(path)
    print(f"wrote {path}: {len(m)} images, {len(set(m.containers))} containers")
    for s in SPLITS:
        tr, te = m.containers_of(m.indices(s, "train")), m.containers_of(m.indices(s, "test"))
        print(f"  {s}: {len(tr)} training containers, {len(te)} test containers ({', '.join(te)})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
