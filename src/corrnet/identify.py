"""Recover the kernel K (and bias b) with ``Y = corr2d(X, K) + b`` from two images, exactly.

The notebooks learn the edge kernel ``[[1, -1]]`` back by gradient descent. The model is
linear in K and b, so least squares over every window gives it in one solve: each window of
X is one equation ``Y[i, j] = <X[i:i+kh, j:j+kw], K> + b``. Writing the N windows as the rows
of a matrix A (N x p, p = C_in*kh*kw + 1), the normal equations ``(A^T A) theta = A^T y`` need
only p x p numbers, and every entry is a correlation sum:

    (A^T A)[(c,a,b), (d,a',b')] = sum_windows X_c[i+a, j+b] X_d[i+a', j+b']

depends mostly on the lag (a'-a, b'-b): it is the image's autocorrelation at that lag (one
FFT for all lags) less the thin strips at the image's edge that this pair's windows do not
see; ``A^T y`` is the cross-correlation of X with Y (one more FFT). So memory grows with the
kernel, not the image: a 4096 x 4096 pair with a 15 x 15 kernel needs a 226 x 226 matrix.

The solve is rank-revealing: an eigendecomposition of A^T A, directions whose singular value
(of A) is below ``rcond`` times the largest are undetermined. Then the result says
``identifiable=False``, gives the minimum-norm solution and lists the undetermined directions
as kernels, never a silently arbitrary kernel.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["KernelFit", "identify_kernel"]

# `describe` calls a fit that explains less than this share of Y's variance poor
POOR_FIT = 0.99

# a problem with fewer than this many multiply-adds in A^T A is summed window by window
_DIRECT_WORK = 1e8
# windows per chunk when patches are built explicitly (chunk x p float64 in memory)
_CHUNK = 1 << 15


# ---------------------------------------------------------------------------------------------
# the result
# ---------------------------------------------------------------------------------------------

@dataclass
class KernelFit:
    """What `identify_kernel` found.

    kernel: (kh, kw) for 2-D images; (C_out, C_in, kh, kw) for (C, H, W) images; (C, kh, kw)
        with ``per_channel=True``. bias: a float, or one per output channel.
    residual_rms: the root mean square of Y - corr2d(X, K) - b over the windows used.
    r_squared: the share of Y's variance (over those windows) that the fit explains; well
        below 1 says that Y is not a linear filter of X (a gradient magnitude, a nonlinear
        tone curve, a different picture) whatever kernel is printed.
    std_errors / bias_std_errors: sigma * sqrt(diag((A^T A)^-1)), sigma^2 = RSS / (N - rank);
        ``inf`` for a coefficient the data leave undetermined, ``nan`` when N == rank.
    rank, n_params: the rank of the window matrix A and its columns (per output channel).
    identifiable: rank == n_params for every output channel.
    undetermined: (n, *kernel_slice) orthonormal directions (as kernels, with the bias part in
        ``undetermined_bias``) along which the kernel can change without changing the fit.
    """

    kernel: np.ndarray
    bias: float | np.ndarray
    residual_rms: float
    std_errors: np.ndarray
    bias_std_errors: float | np.ndarray
    rank: int
    n_params: int
    identifiable: bool
    undetermined: np.ndarray
    undetermined_bias: np.ndarray
    kernel_size: tuple[int, int]
    mode: str
    n_equations: int
    n_saturated: int
    rcond: float
    seconds: float
    method: str = "closed"
    size_search: list = field(default_factory=list)
    gd: dict | None = None
    r_squared: float = float("nan")

    def to_dict(self) -> dict:
        """Plain numbers and lists, for ``json.dumps`` (inf and nan become null)."""
        def plain(value):
            if isinstance(value, np.ndarray):
                return plain(value.tolist())
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (float, np.floating)):
                return float(value) if math.isfinite(value) else None
            if isinstance(value, np.integer):
                return int(value)
            return value

        return {name: plain(getattr(self, name)) for name in self.__dataclass_fields__}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def __str__(self) -> str:
        return describe(self)


def _rounded(array: np.ndarray, scale: float) -> np.ndarray:
    """Values rounded to 12 significant digits of `scale` (so 1 - 1e-16 prints as 1)."""
    if not np.isfinite(scale) or scale == 0:
        return array
    digits = min(12 - int(math.floor(math.log10(scale))), 300)
    return np.round(array, digits) + 0.0  # + 0.0 turns -0.0 into 0.0


def describe(fit: KernelFit) -> str:
    """A readable report: kernel, bias, residual, standard errors, rank."""
    scale = float(np.max(np.abs(fit.kernel))) if fit.kernel.size else 0.0
    lines = []
    with np.printoptions(precision=6, suppress=True, linewidth=100):
        lines.append(f"kernel {fit.kernel_size[0]}x{fit.kernel_size[1]} "
                     f"(shape {tuple(fit.kernel.shape)}, mode {fit.mode!r})"
                     + (", gradient descent's (bias too)" if fit.gd else "") + ":")
        lines.append(str(_rounded(fit.kernel, scale)))
        lines.append(f"bias: {np.round(fit.bias, 9) + 0.0}")
        lines.append(f"residual RMS: {fit.residual_rms:.6g} over {fit.n_equations} windows"
                     + (f" ({fit.n_saturated} with a saturated output left out)"
                        if fit.n_saturated else ""))
        lines.append(f"explains {fit.r_squared:.4%} of Y's variance"
                     + ("" if not fit.r_squared < POOR_FIT else
                        " -- a poor fit: Y is probably not a linear filter of X (a gradient "
                        "magnitude, a nonlinear map, another picture?), whatever the kernel"))
        lines.append("standard errors:")
        lines.append(str(np.asarray(fit.std_errors)))
        lines.append(f"bias standard error: {fit.bias_std_errors}")
    lines.append(f"rank {fit.rank} of {fit.n_params} "
                 f"({'identifiable' if fit.identifiable else 'NOT identifiable'}, "
                 f"rcond {fit.rcond:g})")
    if not fit.identifiable:
        lines.append(f"{len(fit.undetermined)} direction(s) left undetermined (any multiple "
                     "can be added to the kernel, with the bias part, without changing the "
                     "fit); the kernel shown is the minimum-norm one:")
        with np.printoptions(precision=4, suppress=True, linewidth=100):
            for k, (direction, b) in enumerate(
                    zip(fit.undetermined, fit.undetermined_bias, strict=True)):
                lines.append(f"  direction {k + 1}: {np.round(direction, 6) + 0.0}"
                             + (f", bias {b:+.4g}" if abs(b) > 1e-12 else ""))
    if fit.size_search:
        best = min(fit.size_search, key=lambda row: row["bic"])
        lines.append(f"size chosen by BIC among {len(fit.size_search)} odd sizes: "
                     f"{best['kh']}x{best['kw']}")
    if fit.gd is not None:
        gd = fit.gd
        lines.append(f"gradient descent (lr {gd['lr']}, squared error summed, as the "
                     f"notebooks): " + (
                         f"{gd['steps']} steps to come within {gd['tolerance']:.0e} of the "
                         "closed-form kernel" if gd["reached"] else
                         f"did not come within {gd['tolerance']:.0e} of the closed-form kernel "
                         f"in {gd['steps']} steps ({gd['why']})")
                     + f", {gd['seconds']:.3g} s")
    lines.append(f"time: {fit.seconds:.3g} s")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# sums over windows
# ---------------------------------------------------------------------------------------------

@dataclass
class _Sums:
    """The normal equations' ingredients over a set of windows (one output channel set)."""

    xx: np.ndarray   # (p, p)  sum of patch patch^T, p = C*kh*kw
    x1: np.ndarray   # (p,)    sum of patches
    xy: np.ndarray   # (p, O)  sum of patch * y_o
    y1: np.ndarray   # (O,)    sum of y_o
    yy: np.ndarray   # (O,)    sum of y_o^2
    n: int           # windows
    spectrum: tuple | None = None  # (rfft2 of X, FFT shape) when the lag route made one

    def __sub__(self, other: _Sums) -> _Sums:
        return _Sums(self.xx - other.xx, self.x1 - other.x1, self.xy - other.xy,
                     self.y1 - other.y1, self.yy - other.yy, self.n - other.n, self.spectrum)

    def output(self, o: int) -> _Sums:
        return _Sums(self.xx, self.x1, self.xy[:, o:o + 1], self.y1[o:o + 1], self.yy[o:o + 1],
                     self.n, self.spectrum)


def _window_sums(X: np.ndarray, Y: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                 kh: int, kw: int) -> _Sums:
    """Sums over the listed windows (top-left corners rows, cols), patch by patch in chunks.

    X: (C, H, W), Y: (O, H - kh + 1, W - kw + 1) (or 1-D per window, shaped (O, n))."""
    C = X.shape[0]
    O = Y.shape[0]
    p = C * kh * kw
    xx = np.zeros((p, p))
    x1 = np.zeros(p)
    xy = np.zeros((p, O))
    y1 = np.zeros(O)
    yy = np.zeros(O)
    da = np.arange(kh)[None, :, None]
    db = np.arange(kw)[None, None, :]
    for start in range(0, rows.size, _CHUNK):
        i = rows[start:start + _CHUNK]
        j = cols[start:start + _CHUNK]
        patches = X[:, i[:, None, None] + da, j[:, None, None] + db]    # (C, n, kh, kw)
        patches = patches.transpose(1, 0, 2, 3).reshape(i.size, p)      # (n, p)
        y = Y[:, i, j]                                                  # (O, n)
        xx += patches.T @ patches                                       # (p, n) @ (n, p)
        x1 += patches.sum(axis=0)
        xy += patches.T @ y.T                                           # (p, n) @ (n, O)
        y1 += y.sum(axis=1)
        yy += np.einsum("on,on->o", y, y)
    return _Sums(xx, x1, xy, y1, yy, int(rows.size))


def _all_windows(Hv: int, Wv: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.divmod(np.arange(Hv * Wv), Wv)
    return rows, cols


def _cumsum0(v: np.ndarray) -> np.ndarray:
    """[0, v0, v0 + v1, ...]"""
    return np.concatenate(([0.0], np.cumsum(v)))


def _cumsum2(block: np.ndarray) -> np.ndarray:
    """2-D prefix sums with a zero first row and column: out[r, c] = block[:r, :c].sum()."""
    out = np.zeros((block.shape[0] + 1, block.shape[1] + 1))
    out[1:, 1:] = block.cumsum(axis=0).cumsum(axis=1)
    return out


def _lag_sums(X: np.ndarray, Y: np.ndarray, kh: int, kw: int) -> _Sums:
    """Sums over ALL valid windows from correlation sums: memory O(image + p^2).

    For each channel pair (c, d) and lag (da, db), the FFT gives the whole overlap's sum
    F = sum_{u,v} X_c[u, v] X_d[u+da, v+db]; the windows with kernel rows a, a + da and
    columns b, b + db see the rectangle u in [a, a + Hv), v in [b, b + Wv) of that overlap, so
    F less the strips outside the rectangle (at most kh - 1 rows and kw - 1 columns on each
    side, with the four corners added back) is the entry of A^T A."""
    import scipy.fft  # here, not at the top: `import corrnet` stays cheap

    C, H, W = X.shape
    Hv, Wv = H - kh + 1, W - kw + 1
    Hs = scipy.fft.next_fast_len(H + kh - 1, real=True)
    Ws = scipy.fft.next_fast_len(W + kw - 1, real=True)
    FX = scipy.fft.rfft2(X, s=(Hs, Ws), workers=-1)                    # (C, Hs, Ws//2+1)
    G = np.zeros((C, kh, kw, C, kh, kw))
    lag_rows = np.arange(-(kh - 1), kh)
    lag_cols = np.arange(-(kw - 1), kw)
    for c in range(C):
        for d in range(c, C):
            spectrum = np.conj(FX[c])
            spectrum *= FX[d]
            overlap = _inverse_at(spectrum, lag_rows, lag_cols, (Hs, Ws))  # (2kh-1, 2kw-1)
            xc, xd = X[c], X[d]
            for da in range(-(kh - 1), kh):
                u0, u1 = max(0, -da), min(H, H - da)
                nt = kh - 1 - abs(da)
                for db in range(-(kw - 1), kw):
                    v0, v1 = max(0, -db), min(W, W - db)
                    nl = kw - 1 - abs(db)
                    nv = v1 - v0
                    top = xc[u0:u0 + nt, v0:v1] * xd[u0 + da:u0 + nt + da, v0 + db:v1 + db]
                    bot = xc[u1 - nt:u1, v0:v1] * xd[u1 - nt + da:u1 + da, v0 + db:v1 + db]
                    left = xc[u0:u1, v0:v0 + nl] * xd[u0 + da:u1 + da, v0 + db:v0 + nl + db]
                    right = xc[u0:u1, v1 - nl:v1] * xd[u0 + da:u1 + da, v1 - nl + db:v1 + db]
                    ka = np.arange(nt + 1)[:, None]   # a = u0 + ka: rows [u0, a) left out
                    kb = np.arange(nl + 1)[None, :]   # b = v0 + kb
                    out_top = _cumsum0(top.sum(axis=1))[ka]
                    out_bot = _cumsum0(bot.sum(axis=1)[::-1])[nt - ka]
                    out_left = _cumsum0(left.sum(axis=0))[kb]
                    out_right = _cumsum0(right.sum(axis=0)[::-1])[nl - kb]
                    corners = (_cumsum2(top[:, :nl])[ka, kb]
                               + _cumsum2(top[:, nv - nl:][:, ::-1])[ka, nl - kb]
                               + _cumsum2(bot[::-1, :nl])[nt - ka, kb]
                               + _cumsum2(bot[::-1, nv - nl:][:, ::-1])[nt - ka, nl - kb])
                    value = (overlap[da + kh - 1, db + kw - 1] - out_top - out_bot
                             - out_left - out_right + corners)         # (nt + 1, nl + 1)
                    a = u0 + ka
                    b = v0 + kb
                    G[c, a, b, d, a + da, b + db] = value
                    if d != c:
                        G[d, a + da, b + db, c, a, b] = value
    p = C * kh * kw
    # window sums of X, the rectangle [a, a + Hv) x [b, b + Wv): column sums less the
    # a rows above and kh - 1 - a rows below, then running sums along the row
    columns = X.sum(axis=1)                                            # (C, W)
    above = _cumsum0_rows(X[:, :kh - 1])                               # (C, kh, W)
    below = _cumsum0_rows(X[:, H - (kh - 1):][:, ::-1])                # (C, kh, W)
    x1 = np.empty((C, kh, kw))
    for a in range(kh):
        running = np.zeros((C, W + 1))
        running[:, 1:] = np.cumsum(columns - above[:, a] - below[:, kh - 1 - a], axis=1)
        x1[:, a] = running[:, Wv:Wv + kw] - running[:, :kw]
    # X^T y: the cross-correlation of X_c with Y_o at lags (a, b)
    FY = scipy.fft.rfft2(Y, s=(Hs, Ws), workers=-1)                    # (O, Hs, Ws//2+1)
    cross = np.empty((Y.shape[0], C, kh, kw))
    for o in range(Y.shape[0]):
        for c in range(C):
            spectrum = np.conj(FY[o])
            spectrum *= FX[c]
            cross[o, c] = _inverse_at(spectrum, np.arange(kh), np.arange(kw), (Hs, Ws))
    xy = cross.reshape(Y.shape[0], p).T
    return _Sums(G.reshape(p, p), x1.reshape(p), xy, Y.sum(axis=(1, 2)),
                 np.einsum("ohw,ohw->o", Y, Y), Hv * Wv, (FX, (Hs, Ws)))


def _inverse_at(spectrum: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape) -> np.ndarray:
    """``irfft2(spectrum, s=shape)[rows][:, cols]`` without the whole inverse: the inverse DFT
    summed at those few points only, as two small matrix products (the lags a correlation
    needs are a few dozen of the millions an inverse FFT makes).

    spectrum: (Hs, Ws//2 + 1), a real array's rfft2; the columns of the half spectrum count
    twice (their mirror images), except column 0 and, for even Ws, the last."""
    Hs, Ws = shape
    k1 = np.arange(spectrum.shape[-1])
    weight = np.full(k1.size, 2.0)
    weight[0] = 1.0
    if Ws % 2 == 0:
        weight[-1] = 1.0
    along_cols = np.exp(2j * np.pi * np.outer(k1, cols) / Ws) * weight[:, None]  # (K1, nc)
    along_rows = np.exp(2j * np.pi * np.outer(rows, np.arange(Hs)) / Hs)        # (nr, Hs)
    return (along_rows @ (spectrum @ along_cols)).real / (Hs * Ws)              # (nr, nc)


def _spectrum_of_small(k: np.ndarray, shape) -> np.ndarray:
    """``rfft2(k, s=shape)`` of a small (..., kh, kw) array as matrix products: A0 k A1."""
    Hs, Ws = shape
    kh, kw = k.shape[-2:]
    A0 = np.exp(-2j * np.pi * np.outer(np.arange(Hs), np.arange(kh)) / Hs)         # (Hs, kh)
    A1 = np.exp(-2j * np.pi * np.outer(np.arange(kw), np.arange(Ws // 2 + 1)) / Ws)  # (kw, K1)
    return A0 @ k @ A1                                                   # (..., Hs, K1)


def _cumsum0_rows(rows: np.ndarray) -> np.ndarray:
    """(C, n, W) -> (C, n + 1, W): out[:, t] = rows[:, :t].sum(axis=1)."""
    out = np.zeros((rows.shape[0], rows.shape[1] + 1, rows.shape[2]))
    np.cumsum(rows, axis=1, out=out[:, 1:])
    return out


def _sums(X: np.ndarray, Y: np.ndarray, kh: int, kw: int, route: str | None = None) -> _Sums:
    """Sums over all valid windows; `route` 'windows' or 'lags' (default: by the work)."""
    C, H, W = X.shape
    Hv, Wv = H - kh + 1, W - kw + 1
    p = C * kh * kw
    if route is None:
        route = "windows" if Hv * Wv * p * p <= _DIRECT_WORK else "lags"
    if route == "windows":
        return _window_sums(X, Y, *_all_windows(Hv, Wv), kh, kw)
    return _lag_sums(X, Y, kh, kw)


def _masked_sums(X, Y, keep: np.ndarray, kh: int, kw: int, route=None) -> list[_Sums]:
    """Per output channel, the sums over the windows whose Y is kept (keep: (O, Hv, Wv))."""
    O = Y.shape[0]
    full = None
    out = []
    for o in range(O):
        y = Y[o:o + 1]
        dropped = ~keep[o]
        n_dropped = int(dropped.sum())
        if n_dropped * 2 > keep[o].size:  # mostly dropped: sum the kept windows directly
            rows, cols = np.nonzero(keep[o])
            out.append(_window_sums(X, y, rows, cols, kh, kw))
            continue
        if full is None:
            full = _sums(X, Y, kh, kw, route)
        rows, cols = np.nonzero(dropped)
        out.append(full.output(o) - _window_sums(X, y, rows, cols, kh, kw))
    return out


# ---------------------------------------------------------------------------------------------
# the solve
# ---------------------------------------------------------------------------------------------

@dataclass
class _Solution:
    theta: np.ndarray     # (q,) coefficients (kernel then bias), standardized units
    rss: float
    rank: int
    cov_unit: np.ndarray  # (q, q) the pseudo-inverse of A^T A (times sigma^2: covariance)
    null: np.ndarray      # (q, n_null) orthonormal null-space basis
    n: int


def _normal_matrix(s: _Sums, bias: bool) -> tuple[np.ndarray, np.ndarray]:
    """A^T A and A^T y with the column of ones appended when there is a bias."""
    if not bias:
        return s.xx, s.xy[:, 0]
    p = s.xx.shape[0]
    G = np.empty((p + 1, p + 1))
    G[:p, :p] = s.xx
    G[:p, p] = G[p, :p] = s.x1
    G[p, p] = s.n
    return G, np.append(s.xy[:, 0], s.y1[0])


_openblas = None  # threadpoolctl's controller of the loaded OpenBLAS libraries, once found


@contextlib.contextmanager
def _blas_on_one_thread():
    """Small dense algebra (eigh of a few hundred rows) on the calling thread: OpenBLAS's
    threads busy-wait, and with another process on the second core an eigh of 226 x 226 took
    880 ms on two threads against 11 ms on one (measured on the project's 2-core machine)."""
    global _openblas
    try:
        if _openblas is None:
            from threadpoolctl import ThreadpoolController
            _openblas = ThreadpoolController().select(internal_api="openblas")
        limiter = _openblas.limit(limits=1)
    except Exception:  # no threadpoolctl or no OpenBLAS: nothing to limit
        yield
        return
    try:
        yield
    finally:
        limiter.restore_original_limits()


def _solve(G: np.ndarray, r: np.ndarray, yy: float, n: int, rcond: float) -> _Solution:
    """Minimum-norm least squares from the normal equations, by eigendecomposition.

    G = A^T A = V diag(w) V^T; the singular values of A are sqrt(w), so directions with
    w <= (rcond * sqrt(w_max))^2 are undetermined."""
    with _blas_on_one_thread():
        return _solve_on_this_thread((G + G.T) / 2, r, yy, n, rcond)


def _solve_on_this_thread(G, r, yy, n, rcond) -> _Solution:
    w, V = np.linalg.eigh(G)
    w_max = max(float(w[-1]), 0.0)
    keep = w > (rcond ** 2) * w_max if w_max > 0 else np.zeros(w.size, bool)
    Vk = V[:, keep]
    theta = Vk @ ((Vk.T @ r) / w[keep])
    rss = max(float(yy - theta @ r), 0.0)
    return _Solution(theta, rss, int(keep.sum()), (Vk / w[keep]) @ Vk.T, V[:, ~keep], n)


# ---------------------------------------------------------------------------------------------
# shapes, modes, sizes
# ---------------------------------------------------------------------------------------------

def _as_array(value, name: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        value = value.detach().numpy()
    array = np.asarray(value)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                     or array.dtype == bool):
        raise TypeError(f"identify_kernel: {name} must be a numeric array, got dtype "
                        f"{array.dtype}")
    if array.ndim not in (2, 3):
        raise ValueError(f"identify_kernel: {name} must be (H, W) or (C, H, W), got shape "
                         f"{array.shape}")
    return array


def _saturation_limits(Y: np.ndarray, saturated):
    """(lo, hi) of the values Y is clipped to, or None."""
    if saturated is None or saturated is False:
        return None
    if isinstance(saturated, str):
        if saturated != "auto":
            raise ValueError(f"identify_kernel: saturated must be 'auto', None or (lo, hi), "
                             f"got {saturated!r}")
        if Y.dtype == np.uint8:
            return (0, 255)
        if Y.dtype == np.uint16:
            return (0, 65535)
        return None
    try:
        lo, hi = saturated
        return float(lo), float(hi)
    except (TypeError, ValueError):
        raise ValueError(f"identify_kernel: saturated must be 'auto', None or (lo, hi), got "
                         f"{saturated!r}") from None


def _kernel_size(value) -> tuple[int, int] | str | None:
    if value is None or value == "auto":
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    try:
        kh, kw = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"identify_kernel: kernel_size must be None, 'auto', an int or "
                         f"(kh, kw), got {value!r}") from None
    if kh < 1 or kw < 1:
        raise ValueError(f"identify_kernel: kernel_size must be positive, got {value!r}")
    return kh, kw


def _offsets(mode: str, kh: int, kw: int) -> tuple[int, int]:
    """Where the valid windows' outputs sit in Y: Y[top + i, left + j] for window (i, j)."""
    if mode == "valid":
        return 0, 0
    if mode == "same":  # corr2d pads (k - 1) // 2 before
        return (kh - 1) // 2, (kw - 1) // 2
    return kh - 1, kw - 1  # full


@dataclass
class _Standardized:
    """X' = (X - mx) / sx per channel, Y' = (Y - my) / sy: A^T A of X' is far better
    conditioned than of 8-bit values around 128. The centring is absorbed by the bias, so it is
    only done when there is one; the kernel and bias go back with `to_original`."""

    xs: np.ndarray
    ys: np.ndarray
    mx: np.ndarray
    my: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    bias: bool

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, bias: bool) -> _Standardized:
        mx = x.mean(axis=(1, 2)) if bias else np.zeros(x.shape[0])
        my = y.mean(axis=(1, 2)) if bias else np.zeros(y.shape[0])
        xs = x - mx[:, None, None]
        ys = y - my[:, None, None]
        sx = np.sqrt((xs ** 2).mean(axis=(1, 2)))
        sy = np.sqrt((ys ** 2).mean(axis=(1, 2)))
        sx[sx == 0] = 1.0
        sy[sy == 0] = 1.0
        xs /= sx[:, None, None]
        ys /= sy[:, None, None]
        return cls(xs, ys, mx, my, sx, sy, bias)

    def to_original(self, sol: _Solution, o: int, inputs: list, kernel_size):
        """Output channel o's coefficients, standard errors (sigma^2 = RSS / (N - rank)) and
        null-space basis in the original units: K = K' sy / sx,
        b = sy b' + my - sum_c mx_c sum K_c, a linear map J (plus my)."""
        kh, kw = kernel_size
        ratio = np.repeat(self.sy[o] / self.sx[inputs], kh * kw)           # (p,)
        q = ratio.size + self.bias
        J = np.zeros((q, q))
        J[np.arange(ratio.size), np.arange(ratio.size)] = ratio
        if self.bias:
            J[-1, :-1] = -ratio * np.repeat(self.mx[inputs], kh * kw)
            J[-1, -1] = self.sy[o]
        theta = J @ sol.theta
        if self.bias:
            theta[-1] += self.my[o]
        dof = sol.n - sol.rank
        sigma2 = sol.rss / dof if dof > 0 else np.nan  # standardized: J scales
        with _blas_on_one_thread():
            cov = J @ sol.cov_unit @ J.T * sigma2                          # (q, q)
        errors = np.sqrt(np.maximum(np.diag(cov), 0.0))
        null = J @ sol.null                                                # (q, n_null)
        if null.shape[1]:
            null, _ = np.linalg.qr(null)
            errors[np.linalg.norm(null, axis=1) > 1e-8] = np.inf  # moves along the null space
        return theta, errors, null


def _mode_and_size(X_shape, Y_shape, X_size, Y_size, mode, kernel_size):
    """corr2d's mode connecting X and Y, and the kernel size ((kh, kw) or 'auto')."""
    (H, W), (Ho, Wo) = X_size, Y_size
    if mode is None:
        if Ho == H and Wo == W:
            mode = "same"
        elif Ho <= H and Wo <= W:
            mode = "valid"
        else:
            raise ValueError(f"identify_kernel: Y of shape {Y_shape} is larger than X of "
                             f"shape {X_shape}: no kernel in mode 'valid' or 'same' connects "
                             f"them (pass mode='full' if Y is corr2d's full output)")
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"identify_kernel: mode must be 'valid', 'same', 'full' or None, got "
                         f"mode={mode!r}")
    size = _kernel_size(kernel_size)
    if mode == "same":
        if (Ho, Wo) != (H, W):
            raise ValueError(f"identify_kernel: mode 'same' needs X and Y of the same size, "
                             f"got X of shape {X_shape} and Y of shape {Y_shape}")
        if size is None:
            size = "auto"
    else:
        implied = (H - Ho + 1, W - Wo + 1) if mode == "valid" else (Ho - H + 1, Wo - W + 1)
        if min(implied) < 1:
            raise ValueError(f"identify_kernel: X of shape {X_shape} and Y of shape "
                             f"{Y_shape}: no kernel connects them in mode {mode!r} (Y must be "
                             f"{'smaller' if mode == 'valid' else 'larger'} than X, or equal)")
        if size == "auto" or size is None:
            size = implied
        elif size != implied:
            raise ValueError(f"identify_kernel: kernel_size {size} does not fit: X of shape "
                             f"{X_shape} and Y of shape {Y_shape} in mode {mode!r} imply "
                             f"{implied[0]}x{implied[1]}")
    if size != "auto" and (size[0] > H or size[1] > W):
        raise ValueError(f"identify_kernel: kernel_size {size[0]}x{size[1]} is larger than "
                         f"the image X of shape {X_shape}")
    return mode, size


# ---------------------------------------------------------------------------------------------
# the public function
# ---------------------------------------------------------------------------------------------

def identify_kernel(X, Y, kernel_size=None, *, bias=True, mode=None, per_channel=False,
                    saturated="auto", rcond=1e-6, max_size=15, method="closed",
                    gd_lr=3e-2, gd_max_steps=10_000, gd_tolerance=1e-12,
                    _route=None) -> KernelFit:
    """Find K (and b) with ``Y = corr2d(X, K) + b``, from X and Y alone, in one solve.

    X: (H, W) or (C_in, H, W); Y: (H', W') or (C_out, H', W'), any numeric dtype (computed in
    float64). Every channel of Y is a sum of corr2d of every channel of X (as ``conv2d``), so
    the kernel is (C_out, C_in, kh, kw) (or (kh, kw) for two 2-D images); with
    ``per_channel=True`` channel c of Y comes from channel c of X only: (C, kh, kw).

    mode: how Y sits on X, as corr2d's modes: 'valid' (Y smaller, kh = H - H' + 1), 'same'
    (same size), 'full' (Y larger, kh = H' - H + 1); None (default) infers 'valid' or 'same'
    from the sizes. Only windows wholly inside X are used, so in 'same' and 'full' the border
    (where the unknown boundary rule acts) is left out.

    kernel_size: None (implied by the sizes, or 'auto' for 'same'), (kh, kw), an int, or
    'auto': search odd sizes kh, kw in 1, 3, ..., max_size, fitting every candidate on the same
    windows (those inside X for the largest), and keep the one with the smallest Bayesian
    information criterion ``BIC = N ln(RSS / N) + k ln(N)`` (N equations, k = rank), RSS
    floored at ``N (1e-5 sd(Y))^2`` so that exact fits tie on the floor and the smallest exact
    size wins (an exact fit's RSS, ``Y.Y - theta.(A^T y)``, is float64 cancellation: up to
    ``N (7e-7 sd(Y))^2`` measured, sizes up to 15x15 on 384x512 8-bit images). (An even
    kernel in 'same' mode shows up as the next odd size with a zero first row or column:
    corr2d centres it one cell after its middle.)

    saturated: 'auto' (Y of dtype uint8: 0 and 255; uint16: 0 and 65535; float: none), None,
    or (lo, hi): windows whose Y is <= lo or >= hi are left out (clipped values obey no
    linear model).

    rcond: a direction is undetermined when A's singular value along it is below rcond times
    the largest (A the window matrix, standardized). A^T A squares the condition number, so
    float64 resolves about 1e-7; the default 1e-6 keeps a margin.

    method: 'closed' (least squares) or 'gd': also run the notebooks' gradient descent (lr
    ``gd_lr`` on the summed squared error, from a zero kernel) until its kernel is within
    ``gd_tolerance`` of the closed form's (at most ``gd_max_steps``); the result's kernel and
    bias are then gradient descent's, ``result.gd`` says how many steps it took.

    >>> X = np.ones((6, 8)); X[:, 2:6] = 0           # the notebooks' image and edge map
    >>> Y = np.asarray(corrnet.corr2d(X, [[1., -1.]]))
    >>> fit = corrnet.identify_kernel(X, Y)
    >>> fit.kernel + 0.0, round(fit.bias, 12) + 0.0, fit.identifiable
    (array([[ 1., -1.]]), 0.0, True)
    """
    start = time.perf_counter()
    X = _as_array(X, "X")
    Y = _as_array(Y, "Y")
    limits = _saturation_limits(Y, saturated)
    if method not in ("closed", "gd"):
        raise ValueError(f"identify_kernel: method must be 'closed' or 'gd', got {method!r}")
    if not rcond > 0:
        raise ValueError(f"identify_kernel: rcond must be positive, got {rcond!r}")
    two_d = X.ndim == 2 and Y.ndim == 2
    per_channel = per_channel and not two_d
    x = np.asarray(X[None] if X.ndim == 2 else X, dtype=np.float64)
    y = np.asarray(Y[None] if Y.ndim == 2 else Y, dtype=np.float64)
    for name, a in (("X", x), ("Y", y)):
        if not np.isfinite(a).all():
            raise ValueError(f"identify_kernel: {name} holds NaN or infinite values")
    (C, H, W), (O, Ho, Wo) = x.shape, y.shape
    if min(H, W, Ho, Wo) < 1:
        raise ValueError(f"identify_kernel: X of shape {X.shape} and Y of shape {Y.shape} "
                         f"must not be empty")
    if per_channel and C != O:
        raise ValueError(f"identify_kernel: per_channel needs as many channels in Y as in X, "
                         f"got X of shape {X.shape} and Y of shape {Y.shape}")
    mode, size = _mode_and_size(X.shape, Y.shape, (H, W), (Ho, Wo), mode, kernel_size)

    std = _Standardized.of(x, y, bias)
    xs, ys = std.xs, std.ys
    saturated_mask = (np.zeros(y.shape, bool) if limits is None
                      else (y <= limits[0]) | (y >= limits[1]))

    groups = [(list(range(C)), list(range(O)))] if not per_channel else \
        [([c], [c]) for c in range(C)]
    search = []
    if size == "auto":
        size, search = _search_size(xs, ys, saturated_mask, groups, bias, rcond, max_size,
                                    _route)
    kh, kw = size
    _check_matrix_size(C if not per_channel else 1, kh, kw)
    top, left = _offsets(mode, kh, kw)
    Hv, Wv = H - kh + 1, W - kw + 1
    if Hv < 1 or Wv < 1:
        raise ValueError(f"identify_kernel: kernel {kh}x{kw} is larger than the image X of "
                         f"shape {X.shape}")
    y_valid = ys[:, top:top + Hv, left:left + Wv]
    keep = ~saturated_mask[:, top:top + Hv, left:left + Wv]

    # per group of channels: solve each output channel
    kernel = np.zeros((O, C, kh, kw))
    bias_out = np.zeros(O)
    se = np.full((O, C, kh, kw), np.nan)
    bias_se = np.full(O, np.nan)
    kernel_std = np.zeros((O, C, kh, kw))   # in the standardized units, for the residual
    bias_std = np.zeros(O)
    spectra = []
    ranks, n_total = [], 0
    null_dirs = []
    n_in = [len(g[0]) for g in groups][0]
    q = n_in * kh * kw + (1 if bias else 0)
    for inputs, outputs in groups:
        xg = xs[inputs]
        yg = y_valid[outputs]
        kg = keep[outputs]
        if kg.all():
            shared = _sums(xg, yg, kh, kw, _route)
            per_output = [shared.output(o) for o in range(len(outputs))]
        else:
            per_output = _masked_sums(xg, yg, kg, kh, kw, _route)
        spectra.append(per_output[0].spectrum)
        for o_local, o in enumerate(outputs):
            s = per_output[o_local]
            if s.n == 0:
                raise ValueError(f"identify_kernel: every window of output channel {o} has a "
                                 f"saturated value (limits {limits}): nothing to fit")
            G, r = _normal_matrix(s, bias)
            sol = _solve(G, r, float(s.yy[0]), s.n, rcond)
            ranks.append(sol.rank)
            kernel_std[o, inputs] = sol.theta[:len(inputs) * kh * kw].reshape(-1, kh, kw)
            bias_std[o] = sol.theta[-1] if bias else 0.0
            n_total += s.n
            theta, errors, null = std.to_original(sol, o, inputs, (kh, kw))
            p = len(inputs) * kh * kw
            kernel[o, inputs] = theta[:p].reshape(len(inputs), kh, kw)
            se[o, inputs] = errors[:p].reshape(len(inputs), kh, kw)
            if bias:
                bias_out[o], bias_se[o] = theta[-1], errors[-1]
            if null.shape[1]:
                null_dirs.append(null.T)
    n_saturated = int((~keep).sum())
    undetermined, undetermined_bias = _directions(null_dirs, n_in, kh, kw, bias)
    rank = min(ranks)
    fit_kernel, fit_se = kernel, se
    if per_channel:
        idx = np.arange(C)
        fit_kernel, fit_se = kernel[idx, idx], se[idx, idx]
    elif two_d:
        fit_kernel, fit_se = kernel[0, 0], se[0, 0]
    fit = KernelFit(
        kernel=fit_kernel, bias=float(bias_out[0]) if two_d else bias_out,
        residual_rms=0.0, std_errors=fit_se,
        bias_std_errors=float(bias_se[0]) if two_d else bias_se,
        rank=rank, n_params=q, identifiable=all(r == q for r in ranks),
        undetermined=undetermined, undetermined_bias=undetermined_bias,
        kernel_size=(kh, kw), mode=mode, n_equations=n_total, n_saturated=n_saturated,
        rcond=rcond, seconds=0.0, method=method, size_search=search)
    fit.residual_rms = _standardized_residual_rms(xs, y_valid, keep, kernel_std, bias_std,
                                                  std.sy, groups, spectra)
    if method == "gd":
        _gradient_descent(fit, x, y[:, top:top + Hv, left:left + Wv], kernel, bias_out, bias,
                          per_channel, two_d, keep, gd_lr, gd_max_steps, gd_tolerance)
    fit.r_squared = _r_squared(y[:, top:top + Hv, left:left + Wv], keep, fit.residual_rms)
    fit.seconds = time.perf_counter() - start
    return fit


def _r_squared(y_valid, keep, residual_rms: float) -> float:
    """1 - RSS / TSS over the windows used, TSS about each output channel's mean: the share of
    Y's variation the fitted filter explains (1 for an exact fit; NaN for a constant Y)."""
    total = sum(float(np.sum((y_valid[o][keep[o]] - y_valid[o][keep[o]].mean()) ** 2))
                for o in range(y_valid.shape[0]) if keep[o].any())
    residual = residual_rms ** 2 * int(keep.sum())
    if total == 0:
        return 1.0 if residual == 0 else float("nan")
    return 1.0 - residual / total


def _check_matrix_size(n_in: int, kh: int, kw: int, limit_bytes: float = 2 * 2**30) -> None:
    """A^T A is p x p float64, p = C_in kh kw + 1: refuse what would not fit in memory."""
    p = n_in * kh * kw + 1
    if 8.0 * p * p > limit_bytes:
        raise ValueError(f"identify_kernel: a {kh}x{kw} kernel over {n_in} channel(s) has {p} "
                         f"coefficients: A^T A would need {8.0 * p * p / 2**30:.1f} GiB "
                         f"(limit {limit_bytes / 2**30:.0f} GiB); pass a smaller kernel_size")


def _directions(null_dirs: list, n_in: int, kh: int, kw: int, bias: bool):
    """The union of the output channels' undetermined directions, orthonormal."""
    q = n_in * kh * kw + (1 if bias else 0)
    if not null_dirs:
        return np.zeros((0, n_in, kh, kw) if n_in > 1 else (0, kh, kw)), np.zeros(0)
    stacked = np.concatenate(null_dirs)                                 # (m, q)
    _, s, vt = np.linalg.svd(stacked, full_matrices=False)
    basis = vt[s > 1e-8 * s[0]]                                         # (n, q)
    # a readable sign: the largest entry of each direction positive
    signs = np.sign(basis[np.arange(len(basis)), np.argmax(np.abs(basis), axis=1)])
    basis = basis * signs[:, None]
    shape = (n_in, kh, kw) if n_in > 1 else (kh, kw)
    kernels = basis[:, :n_in * kh * kw].reshape(len(basis), *shape)
    biases = basis[:, -1] if bias else np.zeros(len(basis))
    assert basis.shape[1] == q
    return kernels, biases


def _correlate(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid cross-correlation of x (C, H, W) with k (C, kh, kw), summed over C, in float64:
    out[i, j] = sum_{c,a,b} x[c, i + a, j + b] k[c, a, b]. Small work is summed directly
    (exact to rounding); large work by FFT."""
    C, H, W = x.shape
    _, kh, kw = k.shape
    Ho, Wo = H - kh + 1, W - kw + 1
    if C * Ho * Wo * min(kh * kw, Ho * Wo) <= 4e6:
        out = np.zeros((Ho, Wo))
        if kh * kw <= Ho * Wo:  # one shifted product per kernel entry
            for c in range(C):
                for a in range(kh):
                    for b in range(kw):
                        out += k[c, a, b] * x[c, a:a + Ho, b:b + Wo]
        else:  # one dot product per output entry
            for i in range(Ho):
                for j in range(Wo):
                    out[i, j] = np.einsum("chw,chw->", x[:, i:i + kh, j:j + kw], k)
        return out
    import scipy.fft

    shape = (scipy.fft.next_fast_len(H, real=True), scipy.fft.next_fast_len(W, real=True))
    fx = scipy.fft.rfft2(x, s=shape, workers=-1)                        # (C, Hs, Ws//2+1)
    fk = scipy.fft.rfft2(k, s=shape, workers=-1)
    out = scipy.fft.irfft2((fx * fk.conj()).sum(axis=0), s=shape, workers=-1)
    return out[:Ho, :Wo]


def _standardized_residual_rms(xs, ys_valid, keep, kernel_std, bias_std, sy, groups,
                               spectra) -> float:
    """The residual computed from the images, not from the normal equations (whose
    yy - theta.r cancels when the fit is exact), in the standardized units then scaled back;
    by FFT with the lag route's spectrum of X where there is one."""
    import scipy.fft

    Hv, Wv = ys_valid.shape[1:]
    total, count = 0.0, 0
    for (inputs, outputs), spectrum in zip(groups, spectra, strict=True):
        for o in outputs:
            k = kernel_std[o, inputs]                                   # (C_g, kh, kw)
            if spectrum is None:
                predicted = _correlate(xs[inputs], k)
            else:
                FX, shape = spectrum
                product = np.conj(_spectrum_of_small(k, shape))           # (C_g, Hs, K1)
                product *= FX
                predicted = scipy.fft.irfft2(product.sum(axis=0), s=shape,
                                             workers=-1)[:Hv, :Wv]
            residual = ys_valid[o] - predicted - bias_std[o]
            if not keep[o].all():
                residual = residual[keep[o]]
            total += sy[o] ** 2 * float(residual.ravel() @ residual.ravel())
            count += residual.size
    return math.sqrt(total / count) if count else 0.0


def _predict(x, kernel, bias_out, per_channel):
    O = kernel.shape[0]
    if per_channel:
        return np.stack([_correlate(x[o:o + 1], kernel[o, o:o + 1]) + bias_out[o]
                         for o in range(O)])
    return np.stack([_correlate(x, kernel[o]) + bias_out[o] for o in range(O)])


def _residual_rms(x, y_valid, keep, kernel, bias_out, per_channel) -> float:
    """The residual computed from the images (not the normal equations: no cancellation)."""
    residual = (y_valid - _predict(x, kernel, bias_out, per_channel))[keep]
    return float(np.sqrt(np.mean(residual ** 2))) if residual.size else 0.0


def _gradient_descent(fit, x, y_valid, closed_kernel, closed_bias, bias, per_channel, two_d,
                      keep, lr, max_steps, tolerance) -> None:
    """The notebooks' loop: K -= lr * d/dK sum((corr2d(X, K) + b - Y)^2), from zeros."""
    start = time.perf_counter()
    O, C, kh, kw = closed_kernel.shape
    kernel = np.zeros_like(closed_kernel)
    b = np.zeros(O)
    mask = keep.astype(np.float64)
    reached, why, steps, loss, first_loss = False, "step limit", 0, float("nan"), None
    for step in range(1, max_steps + 1):
        steps = step
        error = (_predict(x, kernel, b, per_channel) - y_valid) * mask      # (O, Hv, Wv)
        loss = float((error ** 2).sum())
        first_loss = loss if first_loss is None else first_loss
        if not math.isfinite(loss) or loss > 1e6 * max(first_loss, 1e-300):
            why = "diverged: the loss grew a millionfold, lr too large for this image"
            break
        for o in range(O):
            inputs = [o] if per_channel else range(C)
            for c in inputs:
                # d loss / d K[o, c, a, b] = 2 sum_ij error[o, i, j] X[c, i + a, j + b]
                kernel[o, c] -= lr * 2 * _correlate(x[c:c + 1], error[o][None])
        if bias:
            b -= lr * 2 * error.sum(axis=(1, 2))
        distance = max(float(np.abs(kernel - closed_kernel).max()),
                       float(np.abs(b - closed_bias).max()) if bias else 0.0)
        if distance <= tolerance:
            reached, why = True, ""
            break
    fit.gd = {"steps": steps, "reached": reached, "why": why, "lr": lr, "max_steps": max_steps,
              "tolerance": tolerance, "final_loss": loss,
              "seconds": time.perf_counter() - start}
    if per_channel:
        idx = np.arange(C)
        fit.kernel = kernel[idx, idx]
    else:
        fit.kernel = kernel[0, 0] if two_d else kernel
    fit.bias = float(b[0]) if two_d else b
    fit.residual_rms = _residual_rms(x, y_valid, keep, kernel, b, per_channel)


def _search_size(xs, ys, saturated_mask, groups, bias, rcond, max_size, route):
    """'same' mode, size unknown: fit every odd (kh, kw) up to max_size on the windows inside X
    for the largest size, keep the smallest BIC (see identify_kernel)."""
    C, H, W = xs.shape
    n_in = len(groups[0][0])
    k = min(max_size, H, W)
    k -= 1 - k % 2  # odd
    while k > 1 and (H - k + 1) * (W - k + 1) < 2 * (n_in * k * k + 1):
        k -= 2
    if k < 1:
        raise ValueError(f"identify_kernel: X of shape {xs.shape} is too small to search a "
                         f"kernel size")
    _check_matrix_size(n_in, k, k)
    r = (k - 1) // 2
    Hv, Wv = H - k + 1, W - k + 1
    y_valid = ys[:, r:r + Hv, r:r + Wv]
    keep = ~saturated_mask[:, r:r + Hv, r:r + Wv]
    sums = []
    for inputs, outputs in groups:
        kg = keep[outputs]
        if kg.all():
            shared = _sums(xs[inputs], y_valid[outputs], k, k, route)
            sums += [shared.output(o) for o in range(len(outputs))]
        else:
            sums += _masked_sums(xs[inputs], y_valid[outputs], kg, k, k, route)
    n_total = sum(s.n for s in sums)
    if n_total == 0:
        raise ValueError("identify_kernel: every output value inside the border is saturated: "
                         "nothing to fit")
    floor = n_total * 1e-10  # (1e-5 sd(Y'))^2 per equation, Y' standardized
    rows = []
    for kh in range(1, k + 1, 2):
        for kw in range(1, k + 1, 2):
            # the (kh, kw) kernel centred in the k x k window: a block of its coefficients
            a = np.arange((k - kh) // 2, (k - kh) // 2 + kh)
            b = np.arange((k - kw) // 2, (k - kw) // 2 + kw)
            idx = (np.arange(n_in)[:, None, None] * k * k + a[None, :, None] * k
                   + b[None, None, :]).ravel()
            rss, rank = 0.0, 0
            for s in sums:
                sub = _Sums(s.xx[np.ix_(idx, idx)], s.x1[idx], s.xy[idx], s.y1, s.yy, s.n)
                G, rhs = _normal_matrix(sub, bias)
                sol = _solve(G, rhs, float(s.yy[0]), s.n, rcond)
                rss += sol.rss
                rank += sol.rank
            bic = n_total * math.log(max(rss, floor) / n_total) + rank * math.log(n_total)
            rows.append({"kh": kh, "kw": kw, "rss": rss, "rank": rank, "bic": bic})
    best = min(rows, key=lambda row: (row["bic"], row["kh"] * row["kw"]))
    return (best["kh"], best["kw"]), rows
