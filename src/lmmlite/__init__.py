"""lmmlite: linear mixed models for genetics, exact and fast.

The model is ``y = X b + e``, ``e ~ N(0, sigmasq_g K + sigmasq_e I)``, with heritability
``hsq = sigmasq_g / (sigmasq_g + sigmasq_e)``. The four functions of Karl Broman's R/lmmlite
(:func:`eigen_rotation`, :func:`get_ml_soln`, :func:`calc_ll`, :func:`fit_lmm`) work on arrays,
for one trait or many at once; :func:`heritability` and :func:`scan` work on pandas tables,
matching samples by id and handling missing values.

The public names are imported on first use, so that ``import lmmlite`` (and the command line's
``--help``) stays quick.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: Public name -> the module that defines it.
_EXPORTS = {
    "BoundaryWarning": "exceptions",
    "ConvergenceWarning": "exceptions",
    "CovariateError": "exceptions",
    "FileFormatError": "exceptions",
    "InputError": "exceptions",
    "KinshipError": "exceptions",
    "LmmliteError": "exceptions",
    "LmmliteWarning": "exceptions",
    "PhenotypeError": "exceptions",
    "SampleMismatchError": "exceptions",
    "SamplesDroppedWarning": "exceptions",
    "LogLik": "core.lmm",
    "calc_ll": "core.lmm",
    "eigen_rotation": "core.lmm",
    "fit_lmm": "core.lmm",
    "get_ml_soln": "core.lmm",
    "hsq_inference": "core.lmm",
    "EigenRotation": "core.results",
    "HsqInference": "core.results",
    "LMMFit": "core.results",
    "MLSolution": "core.results",
    "HERITABILITY_COLUMNS": "results",
    "SCAN_COLUMNS": "results",
    "fit_table": "results",
    "HeritabilityOptions": "options",
    "ScanOptions": "options",
    "heritability": "heritability",
    "loglik_profile": "heritability",
    "scan": "scan",
    "kinship": "kinship",
    "find_peaks": "peaks",
    "permutation_test": "permutation",
    "perm_thresholds": "permutation",
    "genome_pvalues": "permutation",
    "report": "report",
}

__all__ = [
    "HERITABILITY_COLUMNS",
    "SCAN_COLUMNS",
    "BoundaryWarning",
    "ConvergenceWarning",
    "CovariateError",
    "EigenRotation",
    "FileFormatError",
    "HeritabilityOptions",
    "HsqInference",
    "InputError",
    "KinshipError",
    "LMMFit",
    "LmmliteError",
    "LmmliteWarning",
    "LogLik",
    "MLSolution",
    "PhenotypeError",
    "SampleMismatchError",
    "SamplesDroppedWarning",
    "ScanOptions",
    "__version__",
    "calc_ll",
    "eigen_rotation",
    "find_peaks",
    "fit_lmm",
    "fit_table",
    "genome_pvalues",
    "get_ml_soln",
    "heritability",
    "hsq_inference",
    "kinship",
    "loglik_profile",
    "perm_thresholds",
    "permutation_test",
    "report",
    "scan",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lmmlite' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """The package module: importing a submodule named like a public function (``scan``,
    ``heritability``, ``kinship``) must not replace the function by the module, as the import
    system would by setting the package's attribute."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            isinstance(value, types.ModuleType)
            and name in _EXPORTS
            and value.__name__ == f"{__name__}.{name}"
        ):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from .core.lmm import LogLik, calc_ll, eigen_rotation, fit_lmm, get_ml_soln, hsq_inference
    from .core.results import EigenRotation, HsqInference, LMMFit, MLSolution
    from .exceptions import (
        BoundaryWarning,
        ConvergenceWarning,
        CovariateError,
        FileFormatError,
        InputError,
        KinshipError,
        LmmliteError,
        LmmliteWarning,
        PhenotypeError,
        SampleMismatchError,
        SamplesDroppedWarning,
    )
    from .heritability import heritability, loglik_profile
    from .kinship import kinship
    from .options import HeritabilityOptions, ScanOptions
    from .peaks import find_peaks
    from .permutation import genome_pvalues, perm_thresholds, permutation_test
    from .report import report
    from .results import HERITABILITY_COLUMNS, SCAN_COLUMNS, fit_table
    from .scan import scan
