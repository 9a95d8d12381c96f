"""Endmember extraction by pure-pixel search: VCA, N-FINDR, ATGP.

Each extractor takes the valid pixels ``Y (N, bands)`` (no NaN; `BlindUnmixer.fit`
filters them), the number of endmembers ``p``, and returns ``(indices, E)``: the
``(p,)`` row indices of the chosen pixels in ``Y`` and ``E = Y[indices]`` ``(p, bands)``
float32, so endmembers are always actual pixels of the scene.

All work is vectorised over pixels; loops run only over the p endmembers (and N-FINDR's
sweeps). Subspace projections use the eigenvectors of a ``(bands, bands)`` correlation
matrix estimated on a random subsample of at most ``sample`` pixels, then project every
pixel with one float32 matrix product.

- `vca`: Vertex Component Analysis (Nascimento & Bioucas-Dias, IEEE TGRS 2005).
- `nfindr`: N-FINDR (Winter 1999), largest-volume simplex by sequential vertex
  replacement; the volumes obtained by swapping a vertex for *every* pixel come from one
  product with the inverse vertex matrix (Cramer's rule / matrix determinant lemma).
- `atgp`: Automatic Target Generation Process (Ren & Chang 2003), repeated selection of
  the pixel with the largest residual outside the span of those already selected.

`unmixgen.unmix.extract_then_invert` turns these functions into blind unmixing methods
(extraction, then abundances by an inverter such as FCLS).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConvergenceWarning, InputError, ParameterError, check_range
from ..labelled import bands_last

__all__ = ["atgp", "nfindr", "vca"]

SeedLike = int | np.random.Generator | None


# ----------------------------------------------------------------------------------------
# shared pieces
# ----------------------------------------------------------------------------------------
def _pixels(Y: np.ndarray, p: int, min_p: int = 1) -> np.ndarray:
    # a DataArray (or a Dataset's one scene variable) with its spectral dim last, laid out by its
    # dim names as every entry point lays it out: a (band, pixel) one was read as pixels of bands
    Y = np.asarray(bands_last(Y, 1, "Y"))
    if Y.ndim != 2:
        raise InputError(f"pixels have shape {Y.shape}; expected (N, bands)")
    n, bands = Y.shape
    p = int(check_range("p", p, low=min_p, integer=True))
    if p > min(n, bands):
        raise ParameterError("p", p, f"exceeds min(pixels, bands); expected <= {min(n, bands)}")
    return np.ascontiguousarray(Y, dtype=np.float32)


def _subsample(Y: np.ndarray, sample: int | None, rng: np.random.Generator) -> np.ndarray:
    n = Y.shape[0]
    if sample is None or n <= sample:
        return Y
    return Y[np.sort(rng.choice(n, int(sample), replace=False))]


def _moments(Ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Uncentred correlation ``R = Ys^T Ys / n`` ``(B, B)`` and mean ``(B,)``, float64.

    The product runs in float32 (the expensive part) on mean-removed pixels, so the small
    eigenvalues of the covariance do not drown in rounding; the mean is added back in
    float64.
    """
    mean = Ys.mean(axis=0, dtype=np.float64)
    Yc = Ys - mean.astype(np.float32)
    C = (Yc.T @ Yc).astype(np.float64) / Ys.shape[0]
    return 0.5 * (C + C.T) + np.outer(mean, mean), mean


def _top_eig(C: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest ``d`` eigenvalues (descending) and eigenvectors ``(B, d)`` of symmetric ``C``."""
    evals, evecs = np.linalg.eigh(C)
    return evals[::-1][:d], evecs[:, ::-1][:, :d]


def _top_eigvecs(Ys: np.ndarray, d: int, center: bool) -> tuple[np.ndarray, np.ndarray]:
    """Top-``d`` eigenvectors ``(B, d)`` of the (centred) correlation of ``Ys``, and the mean
    subtracted (zeros when not centred)."""
    R, mean = _moments(Ys)
    if center:
        return _top_eig(R - np.outer(mean, mean), d)[1], mean
    return _top_eig(R, d)[1], np.zeros_like(mean)


def _project(Y: np.ndarray, U: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``(Y - mean) @ U`` as one float32 product (the mean is subtracted after projecting)."""
    X = Y @ U.astype(np.float32)
    if np.any(mean):
        X -= (mean @ U).astype(np.float32)
    return X


def _result(Y: np.ndarray, idx: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.asarray(idx, dtype=np.int64)
    return idx, np.array(Y[idx], dtype=np.float32)


# ----------------------------------------------------------------------------------------
# VCA
# ----------------------------------------------------------------------------------------
def _vca_snr(R: np.ndarray, mean: np.ndarray, p: int) -> float:
    """VCA's SNR estimate (dB) from the power captured by the top-p centred subspace.

    ``P_y = E|y|^2 = trace(R)``; ``P_x = `` (sum of the top-p eigenvalues of the covariance)
    ``+ |mean|^2``; ``SNR = 10 log10((P_x - p/B P_y) / (P_y - P_x))``.
    """
    bands = R.shape[0]
    evals, _ = _top_eig(R - np.outer(mean, mean), p)
    p_y = float(np.trace(R))
    p_x = float(evals.sum()) + float(mean @ mean)
    num, den = p_x - p / bands * p_y, p_y - p_x
    if den <= 0:
        return float("inf")
    if num <= 0:
        return float("-inf")
    return float(10.0 * np.log10(num / den))


def vca(Y: np.ndarray, p: int, *, seed: SeedLike = 0, snr: float | None = None,
        sample: int | None = 50_000, projection: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Vertex Component Analysis.

    Projects the data onto a p-dimensional subspace, then repeatedly picks the pixel with
    the most extreme projection onto a random direction orthogonal to the endmembers found
    so far. Two projections, as in the paper:

    - *projective* (high SNR): top-p eigenvectors of the uncentred correlation, each
      pixel scaled onto the plane ``x . u = 1`` (``u`` the mean projection); invariant to
      per-pixel brightness (topography).
    - *orthogonal* (low SNR): the top p-1 principal components plus a constant coordinate.

    ``projection="auto"`` uses the projective one when the SNR is at least
    ``15 + 10 log10(p)`` dB (the paper's rule) **and** so is the SNR of the darkest pixels
    after projective scaling, ``SNR + 20 log10(q)`` with ``q`` the 1st percentile of
    ``x . u`` relative to its mean: projective scaling multiplies the noise of a pixel
    10 times darker than average by 10, and such noisy dark pixels would otherwise be
    picked as vertices (this guard is an addition to the published method).

    Parameters
    ----------
    Y : ``(N, bands)`` valid pixels (float32; other dtypes are converted).
    p : number of endmembers (>= 2).
    seed : int or `numpy.random.Generator`; fixes the subsample and the random directions.
    snr : the data's SNR in dB; estimated from the data when None.
    sample : pixels used to estimate the subspace (all when None).
    projection : ``"auto"``, ``"projective"`` or ``"orthogonal"``.

    Returns
    -------
    indices : ``(p,)`` int64 rows of ``Y``.
    E : ``(p, bands)`` float32 endmembers, ``Y[indices]``.
    """
    Y = _pixels(Y, p, 2)
    if projection not in ("auto", "projective", "orthogonal"):
        raise ParameterError("projection", projection, "expected 'auto', 'projective' or 'orthogonal'")
    n, bands = Y.shape
    rng = np.random.default_rng(seed)
    R, mean = _moments(_subsample(Y, sample, rng))
    threshold = 15.0 + 10.0 * np.log10(p)
    Z = None
    if projection != "orthogonal":
        if snr is None and projection == "auto":
            snr = _vca_snr(R, mean, p)
        if projection == "projective" or snr >= threshold:
            U = _top_eig(R, p)[1]
            X = _project(Y, U, np.zeros(bands))
            u = X.mean(axis=0, dtype=np.float64).astype(np.float32)
            scale = X @ u
            rel = np.percentile(scale, 1.0) / float(np.mean(scale, dtype=np.float64))
            dark_snr = snr + 20.0 * np.log10(rel) if rel > 0 and snr is not None else -np.inf
            if projection == "projective" or dark_snr >= threshold:
                tiny = np.float32(1e-12) * max(float(np.abs(scale).max()), 1e-30)
                scale[np.abs(scale) < tiny] = tiny
                Z = X / scale[:, None]
                const = u.astype(np.float64) / np.linalg.norm(u)  # every pixel has Z . u = 1
            del X, scale
    if Z is None:
        U = _top_eig(R - np.outer(mean, mean), p - 1)[1]
        X = _project(Y, U, mean)
        c = np.sqrt(float(np.max(np.einsum("ij,ij->i", X, X))))
        Z = np.empty((n, p), np.float32)
        Z[:, : p - 1] = X
        Z[:, p - 1] = c
        const = np.eye(p)[p - 1]  # the coordinate that is the same for every pixel
        del X
    # The first direction is drawn orthogonal to `const`, along which all projected pixels
    # agree (the published code uses e_p in both branches; u is its projective analogue).
    A = np.zeros((p, p))
    A[:, 0] = const
    idx: list[int] = []
    for i in range(p):
        w = rng.standard_normal(p)
        f = w - A @ (np.linalg.pinv(A) @ w)
        f /= np.linalg.norm(f)
        v = np.abs(Z @ f.astype(np.float32))
        if idx:
            v[idx] = -1.0  # never pick the same pixel twice
        k = int(np.argmax(v))
        idx.append(k)
        A[:, i] = Z[k]
    return _result(Y, idx)


# ----------------------------------------------------------------------------------------
# N-FINDR
# ----------------------------------------------------------------------------------------
def nfindr(Y: np.ndarray, p: int, *, seed: SeedLike = 0, max_iter: int = 3,
           sample: int | None = 50_000, init: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """N-FINDR: the p pixels spanning the simplex of largest volume.

    Pixels are reduced to their top p-1 principal components ``x``. With the vertex
    matrix ``M = [[1 ... 1], [x_1 ... x_p]]`` ``(p, p)``, the simplex volume is
    ``|det M| / (p-1)!``; by Cramer's rule, replacing vertex j by pixel z multiplies
    ``det M`` by ``(M^{-1} [1; z])_j``. Each step computes that factor for every pixel in
    one product and swaps vertex j for the best pixel when it enlarges the volume; a sweep
    visits every vertex; sweeps stop when nothing changes or after ``max_iter``.

    Parameters
    ----------
    Y : ``(N, bands)`` valid pixels.
    p : number of endmembers (>= 2).
    seed : int or Generator; fixes the subsample and the random initial vertices.
    max_iter : maximum number of sweeps.
    sample : pixels used to estimate the principal components (all when None).
    init : optional ``(p,)`` initial pixel indices (default: random, re-drawn until the
        initial simplex is non-degenerate; ATGP's pixels as a last resort).

    Returns
    -------
    indices : ``(p,)`` int64; E : ``(p, bands)`` float32 ``Y[indices]``.
    """
    Y = _pixels(Y, p, 2)
    n, bands = Y.shape
    check_range("max_iter", max_iter, low=1, integer=True)
    rng = np.random.default_rng(seed)
    U, mean = _top_eigvecs(_subsample(Y, sample, rng), p - 1, center=True)
    Z = np.empty((n, p), np.float64)
    Z[:, 0] = 1.0
    Z[:, 1:] = _project(Y, U, mean)
    scale = float(np.abs(Z[:, 1:]).max()) or 1.0
    Z[:, 1:] /= scale  # well-scaled determinants

    def volume_ok(ix: np.ndarray) -> bool:
        s = np.linalg.svd(Z[ix].T, compute_uv=False)
        return bool(s[-1] > 1e-9 * s[0])

    if init is not None:
        idx = np.asarray(init, np.int64).copy()
        if idx.shape != (p,) or idx.min() < 0 or idx.max() >= n:
            raise ParameterError("init", idx.tolist(), f"expected {p} pixel indices in [0, {n})")
        if not volume_ok(idx):
            raise ParameterError("init", idx.tolist(), "the pixels span a degenerate simplex; expected affinely independent pixels")
    else:
        for _ in range(20):
            idx = rng.choice(n, p, replace=False)
            if volume_ok(idx):
                break
        else:
            idx = atgp(Z[:, 1:].astype(np.float32), p)[0]
    M = Z[idx].T.copy()
    for _sweep in range(int(max_iter)):
        changed = False
        for j in range(p):
            try:
                row = np.linalg.inv(M)[j]
            except np.linalg.LinAlgError:
                row = np.linalg.pinv(M)[j]
            ratio = np.abs(Z @ row)  # |det| after swapping vertex j for each pixel / |det| now
            k = int(np.argmax(ratio))
            if ratio[k] > 1.0 + 1e-9 and k not in idx:
                idx[j] = k
                M[:, j] = Z[k]
                changed = True
        if not changed:
            break
    else:
        warnings.warn(f"nfindr: the simplex was still growing after max_iter={max_iter} sweeps",
                      ConvergenceWarning, stacklevel=2)
    return _result(Y, idx)


# ----------------------------------------------------------------------------------------
# ATGP
# ----------------------------------------------------------------------------------------
def atgp(Y: np.ndarray, p: int, *, subspace: bool = False, sample: int | None = 50_000,
         seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    """Automatic Target Generation Process.

    The first target is the pixel of largest norm; each next one is the pixel of largest
    norm after orthogonal projection away from the targets found so far
    (``P = I - U (U^T U)^{-1} U^T``). Residual norms are updated with one product per
    target (Gram-Schmidt basis), never a loop over pixels. Deterministic.

    Parameters
    ----------
    Y : ``(N, bands)`` valid pixels.
    p : number of targets (>= 1).
    subspace : first project the pixels onto the top-p eigenvectors of their (uncentred)
        correlation, which removes most of the noise.
    sample, seed : subsample used to estimate that subspace.

    Returns
    -------
    indices : ``(p,)`` int64; E : ``(p, bands)`` float32 ``Y[indices]``.
    """
    Y = _pixels(Y, p, 1)
    n, bands = Y.shape
    if subspace:
        U, _ = _top_eigvecs(_subsample(Y, sample, np.random.default_rng(seed)), p, center=False)
        X = _project(Y, U, np.zeros(bands))
    else:
        X = Y
    resid = np.einsum("ij,ij->i", X, X, dtype=np.float64)
    basis = np.zeros((X.shape[1], 0))
    idx: list[int] = []
    for _ in range(p):
        if idx:
            resid[idx] = -np.inf
        k = int(np.argmax(resid))
        idx.append(k)
        q = X[k].astype(np.float64)
        for _pass in range(2):  # re-orthogonalise for stability
            q -= basis @ (basis.T @ q)
        nq = np.linalg.norm(q)
        if nq == 0:
            continue  # no new direction: the data span fewer than p dimensions
        q /= nq
        basis = np.column_stack([basis, q])
        proj = (X @ q.astype(np.float32)).astype(np.float64)
        resid -= proj * proj
    return _result(Y, idx)
