"""Fold-in: a history row becomes a user vector with the item side frozen.

Two shared solvers, used by every model with user vectors:

- :func:`ridge_fold_in` — batched regularized least squares over each row's stored entries
  (closed form, exact), for bilinear models (explicit MF; BPR's projection).
- :func:`gradient_fold_in` — a few full-batch Adam steps on fresh user parameters with the
  model frozen, for models without a closed form (the neural MF, BPR's ranking loss).
"""

from __future__ import annotations

import numpy as np
import torch

from ..utils.validation import raise_invalid
from .device import full_precision

__all__ = ["ridge_fold_in", "gradient_fold_in", "pairwise_fold_in", "gaussian_rows", "normal_equations",
           "length_chunks", "padded_rows"]


def length_chunks(lengths, width, budget):
    """Group row indices, sorted by length, so that ``rows * max_length * width <= budget``.

    Used to pad per-row gathers without letting one long row blow up a whole batch.

    Examples
    --------
    >>> [c.tolist() for c in length_chunks(np.array([3, 1, 2]), width=1, budget=4)]
    [[1, 2], [0]]
    """
    order = np.argsort(lengths, kind="stable")
    cost = np.maximum(lengths[order], 1) * width  # per row of a chunk ending here (lengths ascend)
    chunks, start = [], 0
    while start < order.size:  # one bisection per chunk, not a step per row
        lo, hi = start + 1, order.size  # the largest stop with (stop - start) * cost[stop - 1] <= budget
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if (mid - start) * int(cost[mid - 1]) <= budget:
                lo = mid
            else:
                hi = mid - 1
        chunks.append(order[start:lo])
        start = lo
    return chunks


def padded_rows(batch, width, budget):
    """Yield ``(rows, mask, pos)`` per group of history rows of similar length.

    Each group pads its rows to its longest one: ``rows`` (``[b]`` row indices of
    ``batch``), ``mask`` (``[b, L]``, true at real entries) and ``pos`` (``[b, L]``
    positions into ``batch.indices``/``values``, 0 at padding). Groups hold at most
    ``budget / width`` padded entries; empty rows are skipped. Lengths come from the host
    copy of the row pointer: no device synchronisation.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skrec._torch import DeviceCSR
    >>> b = DeviceCSR.from_scipy(sp.csr_matrix(np.array([[1.0, 2.0], [0.0, 3.0]])), torch.device("cpu"))
    >>> [(r.tolist(), p.tolist()) for r, _, p in padded_rows(b, width=1, budget=2)]
    [([1], [[2]]), ([0], [[0, 1]])]
    """
    lengths = np.diff(batch.indptr_host)
    device = batch.indices.device
    counts = batch.row_counts()
    for rows_host in length_chunks(lengths, width, budget):
        L = int(lengths[rows_host[-1]])
        if L == 0:
            continue
        rows = torch.as_tensor(rows_host, device=device)
        offsets = torch.arange(L, device=device)
        mask = offsets < counts[rows].unsqueeze(1)  # [b, L]
        yield rows, mask, torch.where(mask, batch.indptr[rows].unsqueeze(1) + offsets, 0)


@full_precision()
def ridge_fold_in(batch, item_factors, targets, alpha, *, weights=None, gram=None, intercept=None,
                  budget=2**24):
    """Solve ``min_u Σ_i w_i (t_i - u·v_i)² + alpha |u|²`` for every row of ``batch``.

    Parameters
    ----------
    batch : skrec._torch.DeviceCSR
        History rows; the sum runs over each row's stored entries.
    item_factors : torch.Tensor of shape (n_items, d)
        Frozen item vectors ``v_i``.
    targets : torch.Tensor of shape (nnz,)
        ``t_i`` for each stored entry of ``batch`` (e.g. rating minus biases).
    alpha : float or torch.Tensor of shape (n_rows,)
        L2 strength on ``u``, shared or per row (e.g. proportional to the row's length for a
        per-interaction penalty).
    weights : torch.Tensor of shape (nnz,), optional
        ``w_i`` (confidence weights); 1 when omitted.
    gram : torch.Tensor of shape (d, d), optional
        A matrix added to every row's normal equations (e.g. ``VᵀV`` for an implicit
        projection in which every unobserved item counts as a zero).
    intercept : float or torch.Tensor of shape (n_rows,), optional
        Also fit a per-row intercept ``c`` (``t_i ≈ c + u·v_i``) with L2 strength
        ``intercept``; the result then has ``d + 1`` columns, the intercept last.
    budget : int, default=2**24
        Rows are grouped by length so that a group's padded gather holds at most this many
        numbers; memory is bounded by it, whatever the row lengths.

    Returns
    -------
    torch.Tensor of shape (n_rows, d) or (n_rows, d + 1)

    Notes
    -----
    The normal equations come from :func:`normal_equations` (row lengths read from the host
    copy of the row pointer, so grouping costs no device synchronisation); each group is then
    one batched Cholesky solve, and the factorisations are checked once per call. Empty rows
    get the zero vector (or only the regularised intercept).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skrec._torch import DeviceCSR
    >>> V = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> X = sp.csr_matrix(np.array([[1.0, 2.0, 3.0]]))
    >>> b = DeviceCSR.from_scipy(X, torch.device("cpu"))
    >>> ridge_fold_in(b, V, b.values, alpha=1e-6).round(decimals=3).tolist()
    [[1.0, 2.0]]
    """
    device, dtype = item_factors.device, item_factors.dtype
    d = item_factors.shape[1]
    width = d + (intercept is not None)
    reg = torch.empty((batch.n_rows, width), device=device, dtype=dtype)
    reg[:, :d] = (alpha.to(device, dtype).unsqueeze(1) if torch.is_tensor(alpha) else float(alpha))
    if intercept is not None:
        reg[:, d] = intercept.to(device, dtype) if torch.is_tensor(intercept) else float(intercept)
    out = torch.zeros((batch.n_rows, width), device=device, dtype=dtype)  # empty rows: 0
    failed = []
    for rows, A, rhs in normal_equations(batch, item_factors, targets, weights=weights,
                                         ones=intercept is not None, budget=budget):
        A += torch.diag_embed(reg[rows])
        if gram is not None:
            A[:, :d, :d] += gram
        chol, info = torch.linalg.cholesky_ex(A)  # no host sync per group: counted once below
        failed.append((info != 0).sum())
        out[rows] = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
    refuse_failed(failed, batch.n_rows, "use a larger alpha")
    return out


def refuse_failed(failed, n_rows, advice):
    """Raise when any of ``failed`` (device counts of systems float32 could not factor) is
    nonzero: one host sync for all of them."""
    n_failed = int(sum(failed)) if failed else 0
    if n_failed:
        raise_invalid("X", f"interactions whose weighted least-squares systems float32 can solve (rescale very "
                           f"large values, e.g. with numpy.log1p, or {advice})",
                      f"<{n_failed} of {n_rows} systems not positive definite in float32>")


# Widest v for which bag-summing the outer products beats the padded ``bmm``: at 575 k entries
# (the ML-1M shape, two threads) 5.6 against 32 ms at width 9, 16 against 37 ms at 17, even at
# 33 and 1.4x slower at 65 (the outer products are read from memory, d² numbers per entry).
# The table of outer products may hold 4x the budget: at the ML-10M shape (69,878 users, width
# 17, 20 M numbers) it halved a Gibbs sweep against the padded groups (2.43 s -> 1.19 s).
BAG_WIDTH = 32


def normal_equations(batch, factors, targets, *, weights=None, ones=False, budget=2**24):
    """Yield ``(rows, A, rhs)``: ``Σ_i w_i v_i v_iᵀ`` and ``Σ_i w_i t_i v_i`` per group of rows.

    The sums run over each row's stored entries, ``v_i`` the row of ``factors`` of entry
    ``i`` (with a trailing 1 when ``ones``); empty rows are skipped. With few factors (``v`` at
    most :data:`BAG_WIDTH` wide) and the outer products ``v vᵀ`` of every column within
    ``4 * budget`` numbers, each row's ``A`` is the bag-sum of its columns' outer products (one
    sparse-dense product over the stored entries, no padding; rows in chunks of at most
    ``budget`` numbers); otherwise rows come in groups of similar length (:func:`padded_rows`),
    each one batched gather and one ``bmm``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skrec._torch import DeviceCSR
    >>> b = DeviceCSR.from_scipy(sp.csr_matrix(np.array([[2.0, 0.0], [0.0, 3.0]])), torch.device("cpu"))
    >>> [(r.tolist(), A.tolist(), t.tolist()) for r, A, t in normal_equations(b, torch.eye(2), b.values)]
    [([0, 1], [[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]], [[2.0, 0.0], [0.0, 3.0]])]
    """
    dtype = factors.dtype
    width = factors.shape[1] + bool(ones)
    if ones:
        factors = torch.cat([factors, torch.ones_like(factors[:, :1])], dim=1)
    if width <= BAG_WIDTH and factors.shape[0] * width * width <= 4 * budget:
        outer = (factors.unsqueeze(2) * factors.unsqueeze(1)).reshape(factors.shape[0], width * width)
        w = torch.ones_like(batch.values, dtype=dtype) if weights is None else weights.to(dtype)
        wt = w * targets.to(dtype)
        lengths = np.diff(batch.indptr_host)
        step = max(1, budget // (width * width))
        for start in range(0, batch.n_rows, step):
            stop = min(start + step, batch.n_rows)
            part = batch.slice_rows(start, stop)
            lo, hi = int(batch.indptr_host[start]), int(batch.indptr_host[stop])
            A = part.matmul(outer, values=w[lo:hi]).view(-1, width, width)
            rhs = part.matmul(factors, values=wt[lo:hi])
            filled = np.flatnonzero(lengths[start:stop])
            if filled.size < stop - start:
                keep = torch.as_tensor(filled, device=A.device)
                yield keep + start, A[keep], rhs[keep]
            elif filled.size:
                yield torch.arange(start, stop, device=A.device), A, rhs
        return
    for rows, mask, pos in padded_rows(batch, width, budget):
        V = factors[batch.indices[pos]]  # [b, L, width]
        w = mask.to(dtype) if weights is None else weights[pos] * mask
        Vw = V * w.unsqueeze(-1)
        yield rows, Vw.transpose(1, 2) @ V, (Vw * targets[pos].unsqueeze(-1)).sum(1)


@full_precision()
def gaussian_rows(batch, factors, targets, *, noise_precision, prior_precision, prior_mean, generator=None,
                  budget=2**24, failed=None):
    """Posterior of every row's ``[u, b]`` in Bayesian linear regression, its mean or one draw.

    Each stored entry ``i`` of a row is ``t_i ~ N(u·v_i + b, 1 / noise_precision)`` with the
    row's vector ``x = [u, b] ~ N(prior_mean, prior_precision⁻¹)``; the posterior is
    ``N(A⁻¹ r, A⁻¹)`` with ``A = prior_precision + noise_precision Σ_i ṽ_i ṽ_iᵀ`` and
    ``r = prior_precision prior_mean + noise_precision Σ_i t_i ṽ_i``, ``ṽ_i = [v_i, 1]``
    (the conditional of a Gibbs sweep of Bayesian matrix factorization, Salakhutdinov & Mnih,
    2008). An empty row gets the prior.

    Parameters
    ----------
    batch : skrec._torch.DeviceCSR
        The rows; their stored entries are the observations.
    factors : torch.Tensor of shape (n_columns, d)
        Frozen ``v`` of each column.
    targets : torch.Tensor of shape (nnz,)
        ``t_i`` of each stored entry.
    noise_precision : float or 0-d torch.Tensor
    prior_precision : torch.Tensor of shape (d + 1, d + 1)
    prior_mean : torch.Tensor of shape (d + 1,)
    generator : torch.Generator, optional
        Draw from the posterior with it; ``None`` returns the posterior mean.
    budget : int, default=2**24
        Bounds the padded gather of a group of rows (see :func:`ridge_fold_in`).
    failed : list, optional
        Collects the device counts of systems float32 could not factor, for the caller to
        check once over many calls; ``None`` checks here (one host sync).

    Returns
    -------
    torch.Tensor of shape (n_rows, d + 1)
        ``[u, b]`` per row.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skrec._torch import DeviceCSR
    >>> b = DeviceCSR.from_scipy(sp.csr_matrix(np.array([[2.0, 0.0], [0.0, 0.0]])), torch.device("cpu"))
    >>> mean = gaussian_rows(b, torch.eye(2), b.values, noise_precision=1.0, prior_precision=torch.eye(3),
    ...                      prior_mean=torch.zeros(3))
    >>> mean.round(decimals=3).tolist()  # [A⁻¹ r for A = I + [1, 0, 1][1, 0, 1]ᵀ, r = 2 [1, 0, 1]], then the prior
    [[0.667, 0.0, 0.667], [0.0, 0.0, 0.0]]
    """
    n, width = batch.n_rows, factors.shape[1] + 1
    device, dtype = factors.device, factors.dtype
    prior_precision, prior_mean = prior_precision.to(device, dtype), prior_mean.to(device, dtype)
    shift = prior_precision @ prior_mean
    if generator is None:
        out = prior_mean.expand(n, width).clone()
    else:  # the prior's draw, kept by the empty rows
        chol = torch.linalg.cholesky(prior_precision)
        z = torch.randn((width, n), generator=generator, device=device, dtype=dtype)
        out = prior_mean + torch.linalg.solve_triangular(chol.T, z, upper=True).T
    check, failed = failed is None, [] if failed is None else failed
    for rows, A, rhs in normal_equations(batch, factors, targets, ones=True, budget=budget):
        A = prior_precision + noise_precision * A
        rhs = shift + noise_precision * rhs
        chol, info = torch.linalg.cholesky_ex(A)
        failed.append((info != 0).sum())
        # A = L Lᵀ: the mean is L⁻ᵀ (L⁻¹ r); L⁻ᵀ (L⁻¹ r + z) adds noise of covariance A⁻¹
        y = torch.linalg.solve_triangular(chol, rhs.unsqueeze(-1), upper=False)
        if generator is not None:
            y = y + torch.randn(y.shape, generator=generator, device=device, dtype=dtype)
        out[rows] = torch.linalg.solve_triangular(chol.mT, y, upper=True).squeeze(-1)
    if check:
        refuse_failed(failed, n, "use fewer factors")
    return out


def gradient_fold_in(init, loss_fn=None, *, gradient=None, frozen=None, n_steps=50, learning_rate=0.05):
    """Fit fresh user parameters by full-batch Adam with everything else frozen.

    Parameters
    ----------
    init : torch.Tensor of shape (n_rows, d)
        Starting user vectors (e.g. zeros, or a ridge projection).
    loss_fn : callable, optional
        ``loss_fn(users)`` → scalar loss of the batch's rows given user vectors ``users``,
        differentiated by autograd.
    gradient : callable, optional
        ``gradient(users)`` → the loss's gradient with respect to ``users`` (same shape), for
        losses whose gradient is cheaper written out than traced; used instead of
        ``loss_fn``.
    frozen : torch.nn.Module, optional
        The model whose parameters ``loss_fn`` reads; they are excluded from autograd for
        the duration (no gradient is accumulated on them) and restored afterwards.
    n_steps : int, default=50
    learning_rate : float, default=0.05

    Returns
    -------
    torch.Tensor of shape (n_rows, d)
        Detached user vectors.

    Notes
    -----
    Runs with gradients enabled even inside ``torch.no_grad`` (skrec's inference runs under
    ``no_grad``, not ``inference_mode``, so that tensors made there can enter autograd); only
    ``users`` requires a gradient.

    Examples
    --------
    >>> target = torch.tensor([[1.0, -2.0]])
    >>> u = gradient_fold_in(torch.zeros(1, 2), lambda u: ((u - target) ** 2).sum(),
    ...                      n_steps=300, learning_rate=0.05)
    >>> u.round(decimals=2).tolist()
    [[1.0, -2.0]]
    """
    params = [p for p in frozen.parameters() if p.requires_grad] if frozen is not None else []
    try:
        for p in params:
            p.requires_grad_(False)
        with torch.enable_grad():
            users = init.detach().clone().requires_grad_(True)
            opt = torch.optim.Adam([users], lr=learning_rate)
            for _ in range(n_steps):
                if gradient is not None:
                    users.grad = gradient(users.detach())
                else:
                    opt.zero_grad(set_to_none=True)
                    loss_fn(users).backward()
                opt.step()
    finally:
        for p in params:
            p.requires_grad_(True)
    return users.detach()


def pairwise_fold_in(batch, init, item_factors, item_bias, negatives, *, alpha, negative_weights=None,
                     weights=None, exclude_positives=True, n_steps=30, learning_rate=0.05, budget=2**22):
    """User vectors that minimise the BPR loss of each history row, the items frozen.

    For each row, the loss averages ``-log σ(s_i - s_j)`` over its history items ``i``
    (weighted by ``weights``) and a fixed set of negatives ``j`` (weighted by
    ``negative_weights``), plus ``alpha |u|²``; it is minimised by ``n_steps`` full-batch
    Adam steps from ``init`` (e.g. a ridge projection). Rows are independent, so a group of
    rows is one batched problem.

    Parameters
    ----------
    batch : skrec._torch.DeviceCSR
        History rows.
    init : torch.Tensor of shape (n_rows, d)
    item_factors : torch.Tensor of shape (n_items, d)
    item_bias : torch.Tensor of shape (n_items,) or None
    negatives : torch.Tensor of int64, shape (m,)
        The negative items every row is compared with.
    alpha : float
        L2 strength on the user vector.
    negative_weights : torch.Tensor of shape (m,) or callable, optional
        Weight of each negative (e.g. ``n * p_j`` to stand for a popularity sampler); or a
        function of the current user vectors ``[b, d]`` returning ``[b, m]`` weights,
        evaluated at every step and held constant in its gradient (the distribution of an
        adaptive sampler, :meth:`skrec.sampling.AdaptiveNegatives.probabilities`).
    weights : torch.Tensor of shape (nnz,), optional
        Confidence of each history entry.
    exclude_positives : bool, default=True
        A negative in the row's history does not count as a negative for that row.
    n_steps : int, default=30
    learning_rate : float, default=0.05
    budget : int, default=2**22
        Bounds each group's ``rows * length * m`` pair tensor.

    Returns
    -------
    torch.Tensor of shape (n_rows, d)
        Empty rows keep ``init``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skrec._torch import DeviceCSR
    >>> Q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> b = DeviceCSR.from_scipy(sp.csr_matrix(np.array([[1.0, 0.0, 0.0]])), torch.device("cpu"))
    >>> u = pairwise_fold_in(b, torch.zeros(1, 2), Q, None, torch.arange(3), alpha=0.01, n_steps=100)
    >>> bool(u[0, 0] > 0.5)  # the history item now scores above the others
    True
    """
    m = negatives.numel()
    QS = item_factors[negatives]  # [m, d]
    bS = item_bias[negatives] if item_bias is not None else None
    adaptive = callable(negative_weights)
    omega = torch.ones(m, device=init.device) if negative_weights is None or adaptive else negative_weights
    out = init.clone()
    for rows, mask, pos in padded_rows(batch, m, budget):
        items = batch.indices[pos]  # [b, L]
        Qi = item_factors[items]  # [b, L, d]
        bi = item_bias[items] if item_bias is not None else None
        w = mask.to(init.dtype) if weights is None else weights[pos] * mask  # [b, L]
        keep = ~((items.unsqueeze(-1) == negatives) & mask.unsqueeze(-1)).any(1) if exclude_positives else None
        length = mask.sum(1, keepdim=True).to(init.dtype)  # [b, 1]

        def row_weights(neg_w, w=w, keep=keep, length=length):  # a [b, L] and ω [b, m]: pair_w = a_l ω_j
            neg_w = neg_w if keep is None else neg_w * keep
            return w / (length * neg_w.sum(1, keepdim=True)).clamp(min=1e-12), neg_w

        fixed = None  # with adaptive weights the pair weights change every step
        if not adaptive:
            a, neg_w = row_weights(omega.expand(rows.numel(), -1))
            fixed = a.unsqueeze(-1) * neg_w.unsqueeze(1)  # [b, L, m]

        def gradient(u, Qi=Qi, bi=bi, fixed=fixed, row_weights=row_weights):
            # loss = Σ_lj a_l ω_j softplus(s_j - s_l) + alpha |u|²: with S = σ(s_j - s_l),
            # d/ds_j = ω_j (aᵀS)_j = -Σ_l d/ds_l; adaptive weights follow u, constant in its gradient
            si = torch.einsum("bd,bld->bl", u, Qi)  # [b, L]
            sj = u @ QS.T  # [b, m]
            if bi is not None:
                si, sj = si + bi, sj + bS
            S = torch.sub(sj.unsqueeze(1), si.unsqueeze(2)).sigmoid_()  # [b, L, m]
            if fixed is not None:
                S.mul_(fixed)
                gj, gl = S.sum(1), S.sum(2)
            else:  # the weights change every step: never materialise a [b, L, m] product of them
                a, neg_w = row_weights(negative_weights(u))
                S.mul_(neg_w.unsqueeze(1))
                gj, gl = torch.bmm(a.unsqueeze(1), S).squeeze(1), S.sum(2).mul_(a)
            return gj @ QS - torch.einsum("bl,bld->bd", gl, Qi) + (2 * alpha) * u

        out[rows] = gradient_fold_in(init[rows], gradient=gradient, n_steps=n_steps, learning_rate=learning_rate)
    return out
