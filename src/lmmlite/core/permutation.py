r"""Permutation tests of a fixed-hsq genome scan: the genome-wide maximum LOD of permuted data.

Two methods, both with each trait's heritability held at its null estimate:

``genotypes`` (R/qtl2's ``scan1perm``)
    The rows of the genotypes are permuted against the phenotypes, covariates and kinship, and
    the permuted genotypes are scanned (:func:`stack_permuted`: a chunk's permuted copies side
    by side, scanned as more markers).
``rotated`` (whitened residuals, as BulkLMM.jl)
    Each trait's null residuals are whitened, :math:`r = V^{-1/2} \hat e` with
    :math:`V = h K + (1 - h) I` (computed with the eigenvalue weights), permuted, and scanned
    as pseudo-phenotypes, all permutations at once: for a marker with whitened, residualised
    columns spanned by an orthonormal :math:`B_m`, and pseudo-phenotypes :math:`Z` (rotated
    and whitened),

    .. math::

        \mathrm{LOD}_{m\pi} = \frac n2 \log_{10}
            \frac{\mathrm{rss}_0(z_\pi)}{\mathrm{rss}_a(z_\pi) - \lVert B_m^\top z_\pi\rVert^2}

    where :math:`\mathrm{rss}_a` is the residual sum of squares on the alternative's
    covariates and :math:`\mathrm{rss}_0` on the null's (the same, except on R/qtl2's X
    chromosome with ``Xcovar``). :math:`B^\top Z` for every marker of a chunk is one matrix
    product. The whitened residuals are permuted in sample space (``U r``, then rotated back),
    so that strata are respected and, with LOCO, every chromosome sees the same permutation of
    the same samples. Under the null model the whitened residuals are exchangeable (up to the
    covariates' projection, as in Freedman and Lane's permutation of residuals), so a
    pseudo-phenotype is a draw of a trait with the same heritability and no QTL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import _kernels
from .scan import COLLINEAR_RTOL

__all__ = [
    "PermNull",
    "max_lod_rotated",
    "perm_null",
    "permutation_entropy",
    "sample_permutations",
    "stack_permuted",
    "whitened_bases",
]

_LN10 = float(np.log(10.0))
#: Markers and permutations per block of the rotated method's products (bounds temporaries).
MARKER_BLOCK = 256
#: One-column markers: products of PERM_BLOCK_ONE x MARKER_BLOCK_ONE (512 KiB, in cache for
#: the pass over them that follows).
MARKER_BLOCK_ONE = 128
PERM_BLOCK_ONE = 512
PERM_BLOCK = 4096
#: A one-column marker whose whitened residual keeps less than this share of its squared norm
#: has its residual computed again directly (the fast difference of squares loses digits).
NEAR_COLLINEAR = 1e-6


def permutation_entropy(seed: int, ids: list[str], region: str) -> np.random.SeedSequence:
    """The seed sequence of one set of permutations: the run's seed, the analysed samples
    (their sorted ids) and the region (``"A"``, ``"X"``, or ``""``), so that a trait's
    permutations depend only on these, not on the other traits or on where a task runs."""
    digest = hashlib.sha256("\x1f".join(sorted(ids)).encode()).digest()
    key = (int.from_bytes(digest[:8], "little"), int.from_bytes(region.encode() or b"\0", "little"))
    return np.random.SeedSequence(entropy=int(seed), spawn_key=key)


def sample_permutations(
    ids: list[str], n_perm: int, entropy: np.random.SeedSequence, strata: np.ndarray | None = None
) -> np.ndarray:
    """``n_perm`` permutations of the samples ``ids``, within ``strata`` (a label per sample).

    Row k says, for each sample i (in the order of ``ids``), the sample whose genotypes (or
    whitened residual) it receives: ``perm[k, i]``. The permutations are drawn over the ids in
    sorted order, so they do not depend on the order in which samples are given: a
    Fisher-Yates shuffle of each stratum, all permutations at once."""
    n = len(ids)
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable").astype(np.int32)
    rng = np.random.default_rng(entropy)
    labels = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata)[order]
    perm = np.tile(np.arange(n, dtype=np.int32), (n_perm, 1))
    for label in np.unique(labels):
        # the stratum's samples in sorted-id order, shuffled as positions of ``ids``: sample
        # order[a] receives order[b] when sorted position a receives sorted position b
        where = order[labels == label]
        # draws[r, i] uniform on 0..i (the floor of a uniform variate times i + 1)
        draws = (rng.random((n_perm, where.size)) * np.arange(1, where.size + 1)).astype(np.int32)
        _kernels.shuffle_rows(perm, where, draws)
    return perm


def _orthonormal(A: np.ndarray) -> np.ndarray:
    """An orthonormal basis (n, p) of the columns of A (full column rank)."""
    q, _ = np.linalg.qr(A)
    return q


@dataclass(frozen=True)
class PermNull:
    """One trait's whitened null model and pseudo-phenotypes (rotated method)."""

    sw: np.ndarray
    """Square roots of the weights 1 / (h lambda + 1 - h), (n,)."""
    Qa: np.ndarray
    """Orthonormal basis of the whitened (rotated) covariates of the alternative, (n, pa)."""
    Z: np.ndarray
    """Whitened pseudo-phenotypes residualised on the alternative's covariates, one row per
    permutation, (P, n): rotated, or (``sample_space``) not."""
    sample_space: bool
    """Z is in sample space: a marker's rotated basis B is taken there (U B) before its
    products with Z. Cheaper than rotating Z when the markers' columns are fewer than the
    permutations (a chromosome of a LOCO scan; the X chromosome's many permutations)."""
    rss_a: np.ndarray
    """Their residual sums of squares on the alternative's covariates, (P,)."""
    rss_0: np.ndarray
    """... on the null's covariates (those of the alternative, and Xcovar on X), (P,)."""

    @cached_property
    def Zs(self) -> np.ndarray:
        """``Z sw`` (rotated only): the products with unwhitened one-column markers (made
        once per trait, for all its chunks)."""
        return self.Z * self.sw


def perm_null(
    lam: np.ndarray,
    Xt: np.ndarray,
    pa: int,
    y: np.ndarray,
    h: float,
    U: np.ndarray | None,
    perms: np.ndarray,
    *,
    sample_space: bool = False,
) -> PermNull:
    """Whiten a trait's null residuals and make its pseudo-phenotypes.

    Parameters
    ----------
    lam : (n,)
        Kinship eigenvalues (zeros without a kinship).
    Xt : (n, p)
        Rotated null covariates; the first ``pa`` are the alternative's (the others: Xcovar).
    y : (n,)
        The rotated trait.
    h
        Its heritability (held).
    U : (n, n)
        The eigenvectors (columns), None without a kinship.
    perms : (P, n)
        Permutations (:func:`sample_permutations`).
    sample_space
        Keep the pseudo-phenotypes in sample space (see :class:`PermNull`).
    """
    w = 1.0 / (h * lam + (1.0 - h))
    sw = np.sqrt(w)
    Xw = Xt * sw[:, None]
    Q0 = _orthonormal(Xw)
    Qa = Q0 if pa == Xt.shape[1] else _orthonormal(Xw[:, :pa])
    z = sw * y
    z -= Q0 @ (Q0.T @ z)
    r = z if U is None else U @ z  # whitened residuals of the samples
    Z = r[perms]  # (P, n): row k holds r permuted by perms[k]
    if U is None:
        sample_space = False
    elif not sample_space:
        Z = Z @ U  # rotated: row k is (U' r_k)'
    Q0z, Qaz = (U @ Q0, U @ Qa) if sample_space and U is not None else (Q0, Qa)
    # residualised on the alternative's covariates (a permuted residual is no longer
    # orthogonal to them): then z' m = z' (the marker's residual) for any marker column m
    Z -= (Z @ Qaz) @ Qaz.T
    rss_a = np.einsum("pn,pn->p", Z, Z)
    rss_0 = rss_a if Qa is Q0 else _rss(rss_a, Z, Q0z)
    return PermNull(sw=sw, Qa=Qa, Z=Z, sample_space=sample_space, rss_a=rss_a, rss_0=rss_0)


def _rss(zz: np.ndarray, Z: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Sums of squares of the rows of Z's residuals on the orthonormal Q (``zz``: Z's own)."""
    ZQ = Z @ Q
    return zz - np.einsum("pa,pa->p", ZQ, ZQ)


def whitened_bases(Mw: np.ndarray, Qa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal bases of markers' whitened columns residualised on ``Qa``.

    ``Mw`` (m, k, n): whitened marker columns. Returns ``B`` (m, k, n), each marker's basis in
    its first r rows (r its rank; zeros after), and ``ok`` (m,): rank > 0. A column (or
    singular value) below ``COLLINEAR_RTOL`` times the marker's largest column norm does not
    count, as in the scan."""
    k = Mw.shape[1]
    norms0 = np.sqrt(np.einsum("mkn,mkn->mk", Mw, Mw)).max(axis=1)
    R = Mw - (Mw @ Qa) @ Qa.T
    tiny = np.finfo(float).tiny
    if k == 1:
        nr = np.sqrt(np.einsum("mn,mn->m", R[:, 0], R[:, 0]))
        ok = nr > COLLINEAR_RTOL * np.maximum(norms0, tiny)
        B = np.where(ok[:, None, None], R / np.where(ok, nr, 1.0)[:, None, None], 0.0)
        return B, ok
    q, r = np.linalg.qr(np.transpose(R, (0, 2, 1)))  # (m, n, k), (m, k, k)
    u, s, _ = np.linalg.svd(r)
    keep = s > COLLINEAR_RTOL * np.maximum(norms0, tiny)[:, None]
    B = np.transpose(q @ u, (0, 2, 1)) * keep[:, :, None]
    return np.ascontiguousarray(B), keep.any(axis=1)


def max_lod_rotated(Mt: np.ndarray, pns: list[PermNull], U: np.ndarray | None) -> np.ndarray:
    """The largest LOD over a chunk's markers of each pseudo-phenotype of each trait.

    ``Mt`` (m, k, n): the chunk's rotated marker columns (as :func:`scan.rotate_chunk` gives
    them); ``pns`` the traits' pseudo-phenotypes; ``U`` the eigenvectors (for
    pseudo-phenotypes in sample space). Returns (traits, P); -inf where no marker is
    testable."""
    n = Mt.shape[2]
    one_column = Mt.shape[1] == 1
    Msq = Mt[:, 0, :] * Mt[:, 0, :] if one_column else None
    out = []
    for pn in pns:
        if one_column and not pn.sample_space:
            assert Msq is not None
            best = _max_stat_one_column(Mt[:, 0, :], Msq, pn)
        else:
            best = _max_stat_bases(Mt, pn, U)
        with np.errstate(divide="ignore", invalid="ignore"):
            rss1 = np.maximum(pn.rss_a - best, np.finfo(float).tiny * pn.rss_a)
            lod = n / 2.0 * np.log10(pn.rss_0 / rss1)
        out.append(np.where(np.isfinite(best), lod, -np.inf))
    return np.stack(out)


def _max_stat_bases(Mt: np.ndarray, pn: PermNull, U: np.ndarray | None) -> np.ndarray:
    """The largest ``|B_m' z|^2`` over markers (B_m the orthonormal basis of the marker's
    whitened columns residualised on ``Qa``), per pseudo-phenotype; -inf: none testable."""
    m, k, n = Mt.shape
    P = pn.Z.shape[0]
    best = np.full(P, -np.inf)
    for s in range(0, m, MARKER_BLOCK):
        B, ok = whitened_bases(Mt[s : s + MARKER_BLOCK] * pn.sw, pn.Qa)
        if not ok.any():
            continue
        B = B[ok]
        flat = B.reshape(-1, n)
        if pn.sample_space and U is not None:
            flat = flat @ U.T  # the bases in sample space: (U b)'
        for p0 in range(0, P, PERM_BLOCK):
            C = pn.Z[p0 : p0 + PERM_BLOCK] @ flat.T  # (perms, markers x k)
            C *= C
            stat = C.reshape(C.shape[0], -1, k).sum(axis=2).max(axis=1)
            np.maximum(best[p0 : p0 + PERM_BLOCK], stat, out=best[p0 : p0 + PERM_BLOCK])
    return best


def _max_stat_one_column(M: np.ndarray, Msq: np.ndarray, pn: PermNull) -> np.ndarray:
    """:func:`_max_stat_bases` for one-column markers ``M`` (m, n) (rotated; ``Msq`` their
    squares), from the markers shared by all traits: with z residualised on ``Qa``,
    ``(z' b_m)^2 = ((z sw)' m)^2 / d_m``, ``d_m = |r_m|^2`` the squared norm of the whitened
    marker's residual on ``Qa``. ``d_m = (sw^2)' m^2 - |(Qa sw)' m|^2``, recomputed from the
    residual itself where it is small (the difference of nearly equal numbers)."""
    m = M.shape[0]
    P = pn.Z.shape[0]
    best = np.full(P, -np.inf)
    w2 = pn.sw * pn.sw
    Qs = (pn.Qa * pn.sw[:, None]).T  # (pa, n)
    Zs = pn.Zs  # (P, n)
    tiny = np.finfo(float).tiny
    norm2 = Msq @ w2  # |sw m|^2
    proj = Qs @ M.T  # (pa, m)
    d = norm2 - np.einsum("am,am->m", proj, proj)
    near = d <= NEAR_COLLINEAR * norm2
    if near.any():  # nearly in the covariates' span: the residual itself
        Mw = M[near] * pn.sw
        R = Mw - (Mw @ pn.Qa) @ pn.Qa.T
        d[near] = np.einsum("mn,mn->m", R, R)
    ok = np.sqrt(np.maximum(d, 0.0)) > COLLINEAR_RTOL * np.maximum(np.sqrt(norm2), tiny)
    if not ok.any():
        return best
    scale = np.where(ok, 1.0 / np.where(ok, d, 1.0), 0.0)
    # small blocks: each product stays in cache for the pass that follows it
    for s in range(0, m, MARKER_BLOCK_ONE):
        Mb = M[s : s + MARKER_BLOCK_ONE]
        for p0 in range(0, P, PERM_BLOCK_ONE):
            C = Zs[p0 : p0 + PERM_BLOCK_ONE] @ Mb.T  # (perms, markers)
            _kernels.row_max_scaled_sq(
                C, scale[s : s + MARKER_BLOCK_ONE], best[p0 : p0 + PERM_BLOCK_ONE]
            )
    return best


def stack_permuted(block: np.ndarray, rows: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """The genotypes of the analysed samples ``rows`` under each permutation, side by side.

    ``block`` (n_all, k, m); ``perms`` (P, n). Returns (n, k, P m): copy j (markers
    ``j m : (j + 1) m``) gives sample i the genotypes of sample ``perms[j, i]``. Missing values
    stay missing (imputed by the scan with the marker's mean, the same for every copy)."""
    G = block[rows]  # (n, k, m)
    n, k, m = G.shape
    out = np.empty((n, k, perms.shape[0] * m), dtype=G.dtype)
    for j, perm in enumerate(perms):
        out[:, :, j * m : (j + 1) * m] = G[perm]
    return out
