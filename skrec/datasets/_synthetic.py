"""Synthetic interaction data with planted, known structure (fully vectorized)."""

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch

from ..utils.validation import check_param, check_random_seed, raise_invalid

_KINDS = ("implicit", "explicit", "sequence")
_MAX_ROUNDS = 16


def _user_counts(rng, n_users, n_items, density, low=1):
    """Per-user interaction targets: log-normal around ``density * n_items`` (long tail)."""
    mean = density * n_items
    sigma = 0.6
    counts = np.rint(rng.lognormal(np.log(mean) - sigma ** 2 / 2, sigma, size=n_users))
    return np.clip(counts, min(low, n_items), n_items).astype(np.int64)


def _balanced_clusters(rng, n, n_clusters):
    """Cluster labels with sizes differing by at most one, in random order."""
    return rng.permutation(np.arange(n, dtype=np.int64) % n_clusters)


def _merge_unique(keys, new):
    """Sorted distinct union of the sorted distinct ``keys`` and the unsorted ``new``."""
    merged = np.concatenate((keys, np.sort(new)))
    merged.sort(kind="stable")  # two sorted runs: a linear merge
    if merged.size > 1:
        merged = merged[np.concatenate(([True], merged[1:] != merged[:-1]))]
    return merged


def _sample_pairs(counts, n_items, draw, keys=None):
    """Distinct (user, item) keys: ``counts[u]`` items per user drawn by ``draw(users)``.

    Sampling without replacement, in vectorized rounds: a draw that repeats an item the
    user already has is discarded and the shortfall drawn again, with growing
    over-sampling (keeping, per user, the first new distinct items in draw order). Rounds
    stop when the shortfall is below 0.1 % of the target, so users whose draws keep
    colliding may end up slightly short. ``keys`` (sorted, distinct) are kept and count
    towards ``counts``. Returns sorted keys ``u * n_items + i``.
    """
    n_users = counts.size
    users = np.arange(n_users, dtype=np.int64)
    keys = np.zeros(0, dtype=np.int64) if keys is None else keys
    bounds = np.arange(n_users + 1, dtype=np.int64) * n_items
    have = np.diff(np.searchsorted(keys, bounds))
    target = int(counts.sum())
    for round_ in range(_MAX_ROUNDS):
        need = np.maximum(counts - have, 0)
        short = int(need.sum())
        if short == 0 or (short <= 0.001 * target and keys.size):
            break
        if round_ == 0:  # the bulk: no over-sampling, so nothing to truncate
            rep = np.repeat(users, need)
            keys = _merge_unique(keys, rep * n_items + draw(rep))
        else:
            factor = min(2 ** round_, 32)
            rep = np.repeat(users, need * factor)
            cand = rep * n_items + draw(rep)
            _, first = np.unique(cand, return_index=True)
            first.sort()  # distinct candidates, back in draw order (grouped by user)
            cand = cand[first]
            pos = np.minimum(np.searchsorted(keys, cand), max(keys.size - 1, 0))
            if keys.size:
                cand = cand[keys[pos] != cand]
            user = cand // n_items
            rank = np.arange(cand.size) - np.searchsorted(user, user, side="left")
            keys = _merge_unique(keys, cand[rank < need[user]])
        have = np.diff(np.searchsorted(keys, bounds))
    return keys


def _csr_from_keys(keys, data, n_users, n_items):
    rows = keys // n_items
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
    idx_dtype = np.int32 if max(keys.size, n_items) < np.iinfo(np.int32).max else np.int64
    X = sp.csr_matrix((data, (keys - rows * n_items).astype(idx_dtype), indptr.astype(idx_dtype)),
                      shape=(n_users, n_items))
    X.has_sorted_indices = True
    return X


def _alias(p):
    """Walker/Vose alias table of the distribution ``p`` (sums to 1): (accept prob, alias)."""
    m = p.size
    q = (p * m).tolist()
    prob = np.ones(m)
    alias = np.arange(m)
    small = [j for j in range(m) if q[j] < 1.0]
    large = [j for j in range(m) if q[j] >= 1.0]
    while small and large:
        s, g = small.pop(), large[-1]
        prob[s], alias[s] = q[s], g
        q[g] -= 1.0 - q[s]
        if q[g] < 1.0:
            small.append(large.pop())
    return prob, alias


def _cluster_sampler(rng, item_cluster, weights, n_clusters):
    """Return ``sample(clusters)``: one item per entry, from that cluster, prop. to ``weights``.

    O(1) per draw (alias method): one uniform picks a slot of the cluster and, through its
    fractional part, the slot's item or its alias.
    """
    order = np.argsort(item_cluster, kind="stable")
    sizes = np.bincount(item_cluster, minlength=n_clusters)
    starts = np.cumsum(sizes) - sizes
    prob = np.ones(order.size)
    alias = np.arange(order.size)
    for c in range(n_clusters):
        lo, hi = starts[c], starts[c] + sizes[c]
        w = weights[order[lo:hi]]
        prob[lo:hi], a = _alias(w / w.sum())
        alias[lo:hi] = a + lo

    def sample(clusters):
        m = sizes[clusters]
        x = rng.random(clusters.size) * m
        slot = np.minimum(x.astype(np.int64), m - 1)
        frac = x - slot
        slot += starts[clusters]
        return order[np.where(frac < prob[slot], slot, alias[slot])]

    return sample


def _implicit(rng, n_users, n_items, n_clusters, density, noise):
    user_cluster = _balanced_clusters(rng, n_users, n_clusters)
    item_cluster = _balanced_clusters(rng, n_items, n_clusters)
    popularity = 1.0 / (1.0 + rng.permutation(n_items))  # Zipf over a random item ranking
    popularity /= popularity.sum()
    in_cluster = _cluster_sampler(rng, item_cluster, popularity, n_clusters)
    counts = _user_counts(rng, n_users, n_items, density)
    # the planted share: Binomial(count, 1 - noise) cluster items per user (at most the
    # cluster's size), the rest uniformly at random over all items
    cluster_size = np.bincount(item_cluster, minlength=n_clusters)[user_cluster]
    n_in = np.minimum(rng.binomial(counts, 1.0 - noise), cluster_size)
    keys = _sample_pairs(n_in, n_items, lambda users: in_cluster(user_cluster[users]))
    keys = _sample_pairs(counts, n_items, lambda users: rng.integers(0, n_items, size=users.size),
                         keys=keys)
    X = _csr_from_keys(keys, np.ones(keys.size), n_users, n_items)
    return Bunch(X=X, user_cluster=user_cluster, item_cluster=item_cluster,
                 item_popularity=popularity)


def _explicit(rng, n_users, n_items, rank, density, noise):
    global_mean = 3.6
    user_bias = rng.normal(0.0, 0.4, n_users)
    item_bias = rng.normal(0.0, 0.5, n_items)
    scale = (0.8 ** 2 / rank) ** 0.25  # <p_u, q_i> has a standard deviation of about 0.8
    user_factors = rng.normal(0.0, scale, (n_users, rank))
    item_factors = rng.normal(0.0, scale, (n_items, rank))
    keys = _sample_pairs(_user_counts(rng, n_users, n_items, density), n_items,
                         lambda users: rng.integers(0, n_items, size=users.size))
    u = keys // n_items
    i = keys - u * n_items
    ratings = np.empty(keys.size)
    step = 1 << 20
    for s in range(0, keys.size, step):
        uu, ii = u[s:s + step], i[s:s + step]
        ratings[s:s + step] = np.einsum("ij,ij->i", user_factors[uu], item_factors[ii])
    ratings += global_mean + user_bias[u] + item_bias[i] + rng.normal(0.0, noise, keys.size)
    ratings = np.clip(np.rint(ratings), 1.0, 5.0)
    X = _csr_from_keys(keys, ratings, n_users, n_items)
    return Bunch(X=X, user_factors=user_factors, item_factors=item_factors, user_bias=user_bias,
                 item_bias=item_bias, global_mean=global_mean)


def _sequence(rng, n_users, n_items, n_clusters, density, noise, n_successors=4):
    item_cluster = _balanced_clusters(rng, n_items, n_clusters)
    popularity = 1.0 / (1.0 + rng.permutation(n_items))
    popularity /= popularity.sum()
    # each item's likely successors: a few items of its own cluster (not itself)
    order = np.argsort(item_cluster, kind="stable")
    rank_in_order = np.empty(n_items, dtype=np.int64)
    rank_in_order[order] = np.arange(n_items)
    sizes = np.bincount(item_cluster, minlength=n_clusters)
    starts = np.cumsum(sizes) - sizes
    c = item_cluster[:, None]
    m = sizes[c]
    offset = rng.integers(1, np.maximum(m, 2), size=(n_items, n_successors))  # never 0: not itself
    pos = (rank_in_order[:, None] - starts[c] + offset) % m + starts[c]
    successors = order[pos]
    weights = rng.dirichlet(np.ones(n_successors), size=n_items)
    cum = np.cumsum(weights, axis=1)
    cum[:, -1] = 1.0
    transition = sp.csr_matrix((weights.ravel(), successors.ravel(),
                                np.arange(0, n_items * n_successors + 1, n_successors)),
                               shape=(n_items, n_items))
    transition.sum_duplicates()

    lengths = _user_counts(rng, n_users, n_items, density, low=2)
    steps = np.minimum(np.ceil(1.5 * lengths).astype(np.int64) + 1, 4 * n_items)
    by_len = np.argsort(-steps, kind="stable")  # active users are a prefix at every step
    steps_sorted = steps[by_len]
    offsets = np.concatenate(([0], np.cumsum(steps_sorted)[:-1]))
    visited = np.empty(int(steps.sum()), dtype=np.int64)
    state = rng.choice(n_items, size=n_users, p=popularity)
    for t in range(int(steps_sorted[0])):
        n_active = int(np.searchsorted(-steps_sorted, -t, side="left"))
        state = state[:n_active]
        visited[offsets[:n_active] + t] = state
        pick = (rng.random(n_active)[:, None] > cum[state]).sum(axis=1)
        nxt = successors[state, np.minimum(pick, n_successors - 1)]
        jump = rng.random(n_active) < noise
        nxt[jump] = rng.integers(0, n_items, size=int(jump.sum()))
        state = nxt
    user_of = np.repeat(by_len, steps_sorted)
    t_of = np.arange(visited.size) - np.repeat(offsets, steps_sorted)
    # keep each item's first visit, then the first `lengths[u]` distinct items, in order
    keys = user_of * n_items + visited
    first = np.lexsort((t_of, keys))
    k_sorted = keys[first]
    keep = first[np.concatenate(([True], k_sorted[1:] != k_sorted[:-1]))]
    by_time = keep[np.lexsort((t_of[keep], user_of[keep]))]
    u = user_of[by_time]
    group_start = np.searchsorted(u, u, side="left")
    position = np.arange(u.size) - group_start + 1
    ok = position <= lengths[u]
    keys, position = keys[by_time][ok], position[ok]
    srt = np.argsort(keys, kind="stable")
    X = _csr_from_keys(keys[srt], position[srt].astype(np.float64), n_users, n_items)
    return Bunch(X=X, item_cluster=item_cluster, transition=transition, item_popularity=popularity)


def make_interactions(n_users=500, n_items=200, *, kind="implicit", n_clusters=8, density=0.05,
                      noise=0.1, random_state=None):
    """Generate a synthetic user x item interaction matrix with planted structure.

    Everything is vectorized: a 69,878 x 10,681 implicit matrix with 7.6 M interactions
    (ML-10M-shaped, ``density=0.0102``) takes a few seconds.

    Parameters
    ----------
    n_users, n_items : int, default=500, 200
        Matrix shape.
    kind : {"implicit", "explicit", "sequence"}, default="implicit"
        - ``"implicit"``: users and items fall in ``n_clusters`` balanced clusters; each
          interaction of a user is, with probability ``1 - noise``, an item of the user's
          cluster drawn by popularity (Zipf over a random ranking of the items, without
          replacement), else a uniformly random item. Binary CSR (stored ``1.0``). About
          ``1 - noise + noise / n_clusters`` of the interactions fall in the user's
          cluster, less when users' counts approach the cluster size.
        - ``"explicit"``: ratings in ``{1, ..., 5}`` from
          ``global_mean + user_bias + item_bias + <user_factors, item_factors>`` (rank
          ``n_clusters``) plus Gaussian noise of standard deviation ``noise``, rounded and
          clipped, at uniformly random positions.
        - ``"sequence"``: each user walks a first-order Markov chain over items (each item
          has 4 likely successors in its own cluster, weights in ``transition``; with
          probability ``noise`` the walk jumps to a uniformly random item), starting from a
          popularity-drawn item. The stored value is the position ``1..L`` of the item in
          the user's sequence (an order key, larger = later); an item is stored once per
          user (its first visit; revisits are skipped).
    n_clusters : int, default=8
        Number of clusters (``"implicit"``, ``"sequence"``) or rank (``"explicit"``);
        at most ``n_items``.
    density : float in (0, 1], default=0.05
        Mean share of the items a user interacts with. Users' counts are log-normal around
        ``density * n_items`` (at least 1, 2 for sequences); repeated draws are re-drawn a
        few times, so the realised density can be slightly lower.
    noise : float, default=0.1
        Share of off-structure interactions (in ``[0, 1]``) for ``"implicit"`` and
        ``"sequence"``; the rating noise standard deviation (``>= 0``) for ``"explicit"``.
    random_state : int, numpy Generator/RandomState or None
        Seed; the same seed gives the same data.

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` (CSR float64 ``(n_users, n_items)``) and the ground truth:
        ``"implicit"``: ``user_cluster``, ``item_cluster``, ``item_popularity``;
        ``"explicit"``: ``user_factors``, ``item_factors``, ``user_bias``, ``item_bias``,
        ``global_mean``; ``"sequence"``: ``item_cluster``, ``transition`` (CSR
        ``(n_items, n_items)``, rows sum to 1), ``item_popularity``.

    Examples
    --------
    >>> b = make_interactions(100, 200, n_clusters=4, density=0.05, random_state=0)
    >>> b.X.shape, b.X.nnz > 0, set(b.X.data) == {1.0}
    ((100, 200), True, True)
    >>> rows, cols = b.X.nonzero()
    >>> float((b.user_cluster[rows] == b.item_cluster[cols]).mean()) > 0.8
    True
    >>> r = make_interactions(50, 30, kind="explicit", random_state=0).X
    >>> bool(r.data.min() >= 1 and r.data.max() <= 5)
    True
    """
    n_users = check_param("n_users", n_users, "int", low=1)
    n_items = check_param("n_items", n_items, "int", low=2 if kind == "sequence" else 1)
    check_param("kind", kind, "str", options=_KINDS)
    n_clusters = check_param("n_clusters", n_clusters, "int", low=1)
    if n_clusters > n_items:
        raise_invalid("n_clusters", f"an int <= n_items ({n_items})", n_clusters)
    density = check_param("density", density, "float", low=0, high=1, low_inclusive=False)
    noise = check_param("noise", noise, "float", low=0, high=None if kind == "explicit" else 1)
    rng = np.random.default_rng(check_random_seed(random_state))
    if kind == "implicit":
        return _implicit(rng, n_users, n_items, n_clusters, density, noise)
    if kind == "explicit":
        return _explicit(rng, n_users, n_items, n_clusters, density, noise)
    return _sequence(rng, n_users, n_items, n_clusters, density, noise)
