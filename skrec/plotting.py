"""Plots of a fitted model: training curves and an item-embedding map (matplotlib, optional).

Install the extra with ``pip install "skrec[plot]"``; without matplotlib these functions raise
an ``ImportError`` that says so.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .utils.validation import check_param, raise_invalid

__all__ = ["plot_history", "plot_item_embeddings"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("skrec.plotting needs matplotlib: pip install 'skrec[plot]'") from exc
    return plt


def plot_history(estimator, *, ax=None, show_lr=True):
    """Draw the training loss, the validation loss and the learning rate per epoch.

    Parameters
    ----------
    estimator : fitted skrec estimator or list of dict
        Anything with ``history_`` (or the history itself): records with ``epoch``, ``loss``
        and optionally ``val_loss`` and ``lr``.
    ax : matplotlib Axes, optional
        Where to draw the losses (a new figure when omitted).
    show_lr : bool, default=True
        Also draw the learning rate on a second y axis.

    Returns
    -------
    matplotlib.axes.Axes
        The axes of the losses.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skrec import MFRegressor
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(100, 50, kind="explicit", density=0.2, random_state=0).X
    >>> model = MFRegressor(n_factors=4, solver="gradient", max_iter=5, early_stopping=True, random_state=0).fit(X)
    >>> ax = plot_history(model)
    >>> [line.get_label() for line in ax.get_lines()]
    ['loss', 'val_loss']
    """
    history = estimator if isinstance(estimator, list) else getattr(estimator, "history_", None)
    if history is None:
        check_is_fitted(estimator, "history_")
    if not history or not all(isinstance(h, dict) and "epoch" in h and "loss" in h for h in history):
        raise_invalid("estimator", "a fitted estimator whose history_ holds records with 'epoch' and 'loss'",
                      history)
    check_param("show_lr", show_lr, "bool")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    epochs = [h["epoch"] for h in history]

    def column(key):  # None (not applicable to this model) is drawn as a gap
        values = [h.get(key) for h in history]
        return None if all(v is None for v in values) else [np.nan if v is None else v for v in values]

    ax.plot(epochs, column("loss") or [np.nan] * len(epochs), label="loss")
    if column("val_loss") is not None:
        ax.plot(epochs, column("val_loss"), label="val_loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if show_lr and column("lr") is not None:
        twin = ax.twinx()
        twin.plot(epochs, column("lr"), color="grey", linestyle=":", label="lr")
        twin.set_ylabel("learning rate")
    ax.legend(loc="upper right")
    return ax


def plot_item_embeddings(estimator, *, items=None, labels=None, components=(0, 1), ax=None):
    """Scatter items along principal components of their factors .

    Parameters
    ----------
    estimator : fitted estimator with ``item_factors_``
    items : array-like of int, optional
        Items to draw (default: all). The principal axes are computed on these items.
    labels : sequence of str, optional
        One label per drawn item (e.g. titles), written beside its point.
    components : (int, int), default=(0, 1)
        Which principal components to put on the x and y axes.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skrec import MFRegressor
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(100, 50, kind="explicit", density=0.2, random_state=0).X
    >>> model = MFRegressor(n_factors=4, max_iter=5, random_state=0).fit(X)
    >>> ax = plot_item_embeddings(model, items=[0, 1, 2], labels=["a", "b", "c"])
    >>> len(ax.texts)
    3
    """
    from .utils.validation import check_items

    check_is_fitted(estimator, "n_items_")
    factors = getattr(estimator, "item_factors_", None)
    if factors is None:
        raise_invalid("estimator", "a fitted estimator with item_factors_ (e.g. MFRegressor, BPRRanker)",
                      type(estimator).__name__, TypeError)
    factors = np.asarray(factors, dtype=np.float64)
    if items is None:
        idx = np.arange(factors.shape[0])
    else:
        check_items(items, factors.shape[0])  # validates; the caller's order is kept for the labels
        idx = np.asarray(items, dtype=np.int64)
    if labels is not None and len(labels) != idx.size:
        raise_invalid("labels", f"one label per drawn item ({idx.size})", f"<{len(labels)} labels>")
    if not (isinstance(components, (tuple, list)) and len(components) == 2
            and all(isinstance(c, (int, np.integer)) and 0 <= c < factors.shape[1] for c in components)):
        raise_invalid("components", f"a pair of component indices in [0, {factors.shape[1]})", components)
    centered = factors[idx] - factors[idx].mean(axis=0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    coords = centered @ vt[list(components)].T
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(coords[:, 0], coords[:, 1], s=8)
    if labels is not None:
        for (x, y), text in zip(coords, labels):
            ax.annotate(str(text), (x, y), fontsize=7)
    ax.set_xlabel(f"PC {components[0] + 1}")
    ax.set_ylabel(f"PC {components[1] + 1}")
    return ax
