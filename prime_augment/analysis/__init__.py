"""Analysis extra: DeepFool, SparseFool, DCT-subspace margins and augmentation coverage.

Install with ``pip install 'prime-augment[analysis]'``. The attacks and margins need only torch;
the plots need matplotlib, which this package checks for on import.

* :func:`deepfool`, :func:`sparsefool` (with the vectorised :func:`linear_solver`): batched attacks
  returning the adversarial images and a per-image ``success`` flag.
* :func:`subspace_margin` / :func:`subspace_margins`: l2 margins along linear subspaces, e.g. the
  DCT blocks of :func:`dct_diagonal_subspaces` or a :func:`random_subspace` control.
* :func:`dct2`, :func:`idct2`, :func:`dct_flip`, :func:`dct_low_pass`, :func:`dct_high_pass`:
  the orthonormal 2-D DCT and dataset transforms built on it.
* :func:`dct_atom`, :func:`discriminative_dataset`: synthetic data with one discriminative direction
  (the margin studies of Chapter 4); :func:`margin_summary`, :func:`plot_margin_profiles`.
* :func:`delta_sweep` (SparseFool under a perceptibility bound) and :func:`transferability` (adversarials
  of one model judged by another).
* :func:`coverage` (Eq. 5.8 of the method), :func:`embedding_pca` and :class:`PenultimateFeatures`;
  :func:`torch_corruptions`: quick torch stand-ins of seven corruptions for it (not a -C set).
"""

try:
    import matplotlib  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised by a test that hides matplotlib
    raise ImportError(
        "prime_augment.analysis needs the optional dependencies of the 'analysis' extra "
        f"({e.name or 'matplotlib'} is missing): pip install 'prime-augment[analysis]'"
    ) from e

from .coverage import (
    CoverageResult,
    PenultimateFeatures,
    augmentation_embeddings,
    cosine_distances,
    coverage,
    embedding_pca,
)
from .dct import (
    DCTSubspace,
    dct2,
    dct_diagonal_subspaces,
    dct_flip,
    dct_high_pass,
    dct_low_pass,
    dct_matrix,
    idct2,
)
from .deepfool import DeepFoolResult, deepfool
from .evaluation import delta_sweep, predict, transferability
from .margins import margin_summary, subspace_margin, subspace_margins
from .metrics import perturbation_norms, summarize_attack
from .plots import (
    plot_attack_comparison,
    plot_bars,
    plot_delta_sweep,
    plot_diversity,
    plot_examples,
    plot_histogram,
    plot_margin_profiles,
    plot_margins,
    plot_matrix,
)
from .sparsefool import SparseFoolResult, linear_solver, sparsefool
from .subspace import DenseSubspace, Subspace, random_subspace
from .synthetic import dct_atom, discriminative_dataset
from .torch_corruptions import builtin_corruptions, torch_corruptions

__all__ = [
    "CoverageResult",
    "DCTSubspace",
    "DeepFoolResult",
    "DenseSubspace",
    "PenultimateFeatures",
    "SparseFoolResult",
    "Subspace",
    "augmentation_embeddings",
    "builtin_corruptions",
    "cosine_distances",
    "coverage",
    "dct2",
    "dct_atom",
    "dct_diagonal_subspaces",
    "dct_flip",
    "dct_high_pass",
    "dct_low_pass",
    "dct_matrix",
    "deepfool",
    "delta_sweep",
    "discriminative_dataset",
    "embedding_pca",
    "idct2",
    "linear_solver",
    "margin_summary",
    "perturbation_norms",
    "plot_attack_comparison",
    "plot_bars",
    "plot_delta_sweep",
    "plot_diversity",
    "plot_examples",
    "plot_histogram",
    "plot_margin_profiles",
    "plot_margins",
    "plot_matrix",
    "predict",
    "random_subspace",
    "sparsefool",
    "subspace_margin",
    "subspace_margins",
    "summarize_attack",
    "torch_corruptions",
    "transferability",
]
