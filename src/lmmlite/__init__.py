"""lmmlite: linear mixed models for genetics, exact and fast.

The model is ``y = X b + e``, ``e ~ N(0, sigmasq_g K + sigmasq_e I)``, with heritability
``hsq = sigmasq_g / (sigmasq_g + sigmasq_e)``. The four functions of Karl Broman's R/lmmlite
(:func:`eigen_rotation`, :func:`get_ml_soln`, :func:`calc_ll`, :func:`fit_lmm`) work on arrays,
for one trait or many at once; :func:`heritability` works on pandas tables, matching samples
by id and handling missing values.
"""

from ._version import __version__
from .core.lmm import LogLik, calc_ll, eigen_rotation, fit_lmm, get_ml_soln, hsq_inference
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
from .labeled import HERITABILITY_COLUMNS, heritability, loglik_profile
from .results import EigenRotation, HsqInference, LMMFit, MLSolution
from .scan import SCAN_COLUMNS, scan

__all__ = [
    "HERITABILITY_COLUMNS",
    "SCAN_COLUMNS",
    "BoundaryWarning",
    "ConvergenceWarning",
    "CovariateError",
    "EigenRotation",
    "FileFormatError",
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
    "__version__",
    "calc_ll",
    "eigen_rotation",
    "fit_lmm",
    "get_ml_soln",
    "heritability",
    "hsq_inference",
    "loglik_profile",
    "scan",
]
