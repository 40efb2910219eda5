"""The options of a run, each written once: frozen dataclasses that feed the API's defaults,
the planner, a run's manifest (:func:`dataclasses.asdict`) and the command line's defaults.

Constructing one validates every field (:class:`~lmmlite.exceptions.InputError` naming the
option and the value), so a bad option fails before any work.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal

from .exceptions import InputError

__all__ = ["HeritabilityOptions", "PermOptions", "ScanOptions"]

#: Default number of markers read and tested at a time.
CHUNK_SIZE = 2048


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{name} must be a positive integer; got {value!r}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise InputError(f"{name} must be one of {shown}; got {value!r}")


def _flag(name: str, value: Any) -> None:
    if not (isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b"):
        raise InputError(f"{name} must be True or False; got {value!r}")


def _intercept(value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise InputError(f"intercept must be True, False or None; got {value!r}")


def _plain(obj: Any, **kinds: type) -> None:
    """Store the named fields of a frozen ``obj`` as plain Python values (NumPy scalars would
    not survive a JSON manifest)."""
    for name, kind in kinds.items():
        object.__setattr__(obj, name, kind(getattr(obj, name)))


def _scale(value: Any) -> None:
    if not (isinstance(value, numbers.Real) and math.isfinite(value) and float(value) > 0):
        raise InputError(f"kinship_scale must be a positive number; got {value!r}")


def _tol(value: Any) -> None:
    from .core.checks import check_tol

    check_tol(value)


@dataclass(frozen=True)
class HeritabilityOptions:
    """Options of :func:`lmmlite.heritability` (``lmmlite herit``)."""

    reml: bool = True
    """REML (True) or ML."""
    tol: float = 1e-4
    """Brent's tolerance on hsq, in (0, 0.5)."""
    check_boundary: bool = True
    """Compare the optimum with hsq = 0 and 1 (as R/lmmlite's C++ ``fitLMM``)."""
    level: float = 0.95
    """Coverage of the profile-likelihood interval, in (0, 1)."""
    samples: Literal["strict", "intersection"] = "strict"
    """What to do with phenotyped samples missing from the kinship or covariates: an error
    (``strict``) or leave them out with a warning (``intersection``)."""
    intercept: bool | None = None
    """Add an intercept: None adds one unless a covariate column is constant."""
    trait_batch: int = 1024
    """Traits fitted together in one task."""
    kinship_scale: float = 1.0
    """The model's genetic covariance is hsq x kinship_scale x K: 1 as R/lmmlite and GEMMA,
    2 as R/qtl2 (which fits 2K)."""

    def __post_init__(self) -> None:
        _flag("reml", self.reml)
        _tol(self.tol)
        _flag("check_boundary", self.check_boundary)
        if not (isinstance(self.level, numbers.Real) and 0.0 < self.level < 1.0):
            raise InputError(f"level must lie strictly between 0 and 1; got {self.level!r}")
        _choice("samples", self.samples, ("strict", "intersection"))
        _intercept(self.intercept)
        _positive_int("trait_batch", self.trait_batch)
        _scale(self.kinship_scale)
        _plain(
            self,
            reml=bool,
            tol=float,
            check_boundary=bool,
            level=float,
            trait_batch=int,
            kinship_scale=float,
        )


@dataclass(frozen=True)
class ScanOptions:
    """Options of :func:`lmmlite.scan` (``lmmlite scan``) that shape its computation."""

    mode: Literal["fixed", "exact"] = "fixed"
    """``fixed``: the null hsq held (R/qtl2, FaST-LMM); ``exact``: re-estimated per marker
    (GEMMA ``-lmm 4``)."""
    reml: bool = True
    """The Wald test's hsq by REML (True) or ML."""
    keep: Literal["all", "peaks", "max"] = "all"
    """Every test; per trait and chromosome the best test reaching ``threshold``; per trait
    the best test."""
    threshold: float = 3.0
    """LOD threshold of ``keep="peaks"``."""
    chunk_size: int = CHUNK_SIZE
    """Markers read and tested at a time."""
    trait_batch: int = 2048
    """Traits tested together; a task is (trait batch x marker chunk)."""
    tol: float = 1e-7
    """Brent's tolerance of the per-marker searches (``exact``)."""
    center_kinship: bool = False
    """Double-centre the kinship over the analysed samples (as GEMMA)."""
    samples: Literal["strict", "drop"] = "strict"
    """Phenotyped samples lacking genotypes, kinship or covariates: an error (``strict``) or
    left out with a warning (``drop``)."""
    intercept: bool | None = None
    """Add an intercept: None adds one unless a covariate column is constant."""
    kinship_scale: float = 1.0
    """As :attr:`HeritabilityOptions.kinship_scale`."""
    intcovar: tuple[str, ...] = ()
    """Covariates (their column names) that interact with the marker: R/qtl2's ``intcovar``,
    GEMMA's ``-gxe``."""
    hsq_grid: float | None = None
    """``fixed`` mode, opt-in: hold each trait's null hsq rounded to this grid step (e.g. 0.01),
    so that traits of one grid value share their weighted marker products (BulkLMM.jl's
    idea; many traits scan faster). None (default): each trait's own null hsq."""

    def __post_init__(self) -> None:
        _choice("mode", self.mode, ("fixed", "exact"))
        if self.hsq_grid is not None:
            step = self.hsq_grid
            if isinstance(step, bool) or not isinstance(step, numbers.Real) or not 0 < step <= 0.5:
                raise InputError(f"hsq_grid must be a grid step in (0, 0.5]; got {step!r}")
            if self.mode != "fixed":
                raise InputError(
                    "hsq_grid applies to mode='fixed' (the null hsq held); mode='exact' "
                    "re-estimates hsq at every marker"
                )
            object.__setattr__(self, "hsq_grid", float(step))
        _flag("reml", self.reml)
        _choice("keep", self.keep, ("all", "peaks", "max"))
        if not (isinstance(self.threshold, numbers.Real) and not math.isnan(self.threshold)):
            raise InputError(
                f"threshold must be a LOD score (-inf keeps every peak); got {self.threshold!r}"
            )
        _positive_int("chunk_size", self.chunk_size)
        _positive_int("trait_batch", self.trait_batch)
        _tol(self.tol)
        _flag("center_kinship", self.center_kinship)
        _choice("samples", self.samples, ("strict", "drop"))
        _intercept(self.intercept)
        _scale(self.kinship_scale)
        if isinstance(self.intcovar, str) or not all(isinstance(c, str) for c in self.intcovar):
            raise InputError(f"intcovar must be a list of covariate names; got {self.intcovar!r}")
        object.__setattr__(self, "intcovar", tuple(self.intcovar))
        _plain(
            self,
            reml=bool,
            threshold=float,
            chunk_size=int,
            trait_batch=int,
            tol=float,
            center_kinship=bool,
            kinship_scale=float,
        )


@dataclass(frozen=True)
class PermOptions:
    """Options of :func:`lmmlite.permutation_test` (``lmmlite perm``) besides the scan's."""

    n_perm: int = 1000
    """Permutations per trait (of the autosomes, with ``x_specific``)."""
    seed: int = 0
    """Seed of the permutations (with the analysed samples, it fixes them)."""
    method: Literal["rotated", "genotypes"] = "rotated"
    """``rotated``: permute each trait's whitened null residuals; ``genotypes``: permute the
    genotypes' rows (R/qtl2's ``scan1perm``)."""
    x_specific: bool = False
    """Permute the X chromosome apart from the autosomes (R/qtl2's ``perm_Xsp``)."""
    n_perm_x: int = 0
    """Permutations of the X chromosome with ``x_specific`` (0: none)."""
    stratified: bool = False
    """The permutations are within strata."""

    def __post_init__(self) -> None:
        _positive_int("n_perm", self.n_perm)
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, numbers.Integral)
            or self.seed < 0
        ):
            raise InputError(f"seed must be a non-negative integer; got {self.seed!r}")
        _choice("method", self.method, ("rotated", "genotypes"))
        _flag("x_specific", self.x_specific)
        if self.x_specific:
            _positive_int("n_perm_x", self.n_perm_x)
        _flag("stratified", self.stratified)
        _plain(self, n_perm=int, seed=int, x_specific=bool, n_perm_x=int, stratified=bool)
