"""Exceptions and warnings raised by lmmlite.

Every error caused by the user's input subclasses both :class:`LmmliteError` and
:class:`ValueError`, so ``except ValueError`` keeps working for callers who do not know
lmmlite's own classes. Messages state the rule that was broken and the values that broke it.

Statistical trouble (an estimate on the boundary of the parameter space, an optimiser that
did not converge) is not an error: it is flagged per trait in the results (``at_boundary``,
``converged``) and, where a single fit is reported, also raised as a warning.
"""

from __future__ import annotations

__all__ = [
    "BoundaryWarning",
    "ConvergenceWarning",
    "CovariateError",
    "DataWarning",
    "FileFormatError",
    "FileFormatWarning",
    "InputError",
    "KinshipError",
    "LmmliteError",
    "LmmliteWarning",
    "PhenotypeError",
    "SampleMismatchError",
    "SamplesDroppedWarning",
]


class LmmliteError(Exception):
    """Base class of every exception raised on purpose by lmmlite."""


class InputError(LmmliteError, ValueError):
    """The input breaks a rule of the model or of the function called."""


class SampleMismatchError(InputError):
    """Sample ids do not match between inputs, or are duplicated within one."""


class KinshipError(InputError):
    """The kinship matrix is not square, not finite, not symmetric or not positive semidefinite."""


class CovariateError(InputError):
    """The covariates are not finite, are collinear, or leave no degrees of freedom."""


class PhenotypeError(InputError):
    """A phenotype is not numeric, is constant, or has too few observed values."""


class FileFormatError(InputError):
    """A file cannot be read, or does not have the expected layout."""


class LmmliteWarning(UserWarning):
    """Base class of lmmlite's warnings."""


class BoundaryWarning(LmmliteWarning):
    """The heritability estimate lies on the boundary (0 or 1) of its parameter space."""


class ConvergenceWarning(LmmliteWarning):
    """The optimiser stopped without meeting its convergence criterion."""


class SamplesDroppedWarning(LmmliteWarning):
    """Samples were dropped because the user asked to analyse the intersection of the inputs."""


class FileFormatWarning(LmmliteWarning):
    """A file was read, but something in it was taken care of (a trailing separator, ...)."""


class DataWarning(LmmliteWarning):
    """A value looks suspicious (a repeated -9 that may mark missing values, ...)."""
