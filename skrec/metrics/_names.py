"""The one parser of metric names such as ``"ndcg@10"``, shared by every entry point.

:func:`~skrec.metrics.ranking_metrics`, :class:`~skrec.metrics.RankingScorer`,
:func:`~skrec.metrics.get_scorer`, :func:`~skrec.metrics.make_scorers` and
:func:`skrec.model_selection.evaluate` all read names through this module, so they accept
the same spellings: case is ignored, surrounding whitespace (also around ``@``) is
ignored, and ``<k>`` is a positive int written in ASCII digits. Errors name the argument,
list every known name and show what was received, in skrec's one wording
(:func:`skrec.utils.validation.raise_invalid`).
"""

from __future__ import annotations

from skrec.utils.validation import describe, raise_invalid

__all__ = [
    "RANKING_METRIC_NAMES",
    "canonical_ranking_name",
    "expected_metric_names",
    "parse_metric_name",
    "parse_metric_names",
]

# canonical names of the top-k ranking metrics, and the accepted aliases
RANKING_METRIC_NAMES = ("recall", "precision", "ndcg", "ap", "hit_rate", "mrr")
_ALIASES = {"average_precision": "ap"}
_SPELLINGS = {**{name: name for name in RANKING_METRIC_NAMES}, **_ALIASES}
_NAMES_TEXT = "'recall', 'precision', 'ndcg', 'ap' (or 'average_precision'), 'hit_rate', 'mrr'"


def _quoted(names):
    return ", ".join(repr(n) for n in names)


def expected_metric_names(extra=(), *, many=False):
    """The "expected" part of an error message about a metric name.

    Parameters
    ----------
    extra : sequence of str, default=()
        Names without ``@<k>`` that the caller also accepts (e.g. ``("rmse", "mae")``).
    many : bool, default=False
        Whether a list of names is accepted too.

    Returns
    -------
    str
        A phrase that completes ``"<argument> must be ..."``, listing every known name.

    Examples
    --------
    >>> expected_metric_names(("rmse",))  # doctest: +NORMALIZE_WHITESPACE
    "a metric name '<name>@<k>' with <name> one of 'recall', 'precision', 'ndcg', 'ap'
    (or 'average_precision'), 'hit_rate', 'mrr' and <k> an int >= 1 (e.g. 'ndcg@10'),
    or one of 'rmse' (case-insensitive)"
    """
    text = "a metric name '<name>@<k>'" + (" or a list of them" if many else "")
    text += f" with <name> one of {_NAMES_TEXT} and <k> an int >= 1 (e.g. 'ndcg@10')"
    if extra:
        text += f", or one of {_quoted(extra)}"
    return text + " (case-insensitive)"


def _normalize(name):
    """``name`` stripped and lower-cased (``name`` is a str)."""
    return name.strip().lower()


def canonical_ranking_name(name, *, arg="metric"):
    """The canonical name of a ranking metric given without ``@<k>``.

    Parameters
    ----------
    name : str
        ``"recall"``, ``"precision"``, ``"ndcg"``, ``"ap"`` (alias
        ``"average_precision"``), ``"hit_rate"`` or ``"mrr"``, in any case, surrounding
        whitespace ignored.
    arg : str, default="metric"
        The argument named in the error message.

    Returns
    -------
    str
        One of :data:`RANKING_METRIC_NAMES`.

    Raises
    ------
    TypeError
        If ``name`` is not a str.
    ValueError
        If ``name`` is not a known ranking metric.

    Examples
    --------
    >>> canonical_ranking_name(" NDCG ")
    'ndcg'
    >>> canonical_ranking_name("Average_Precision")
    'ap'
    >>> canonical_ranking_name("auc")
    Traceback (most recent call last):
    ...
    ValueError: metric must be one of 'recall', 'precision', ..., 'mrr' (case-insensitive); got 'auc'.
    """
    expected = f"one of {_NAMES_TEXT} (case-insensitive)"
    if not isinstance(name, str):
        raise_invalid(arg, expected, name, TypeError)
    spelling = _normalize(name)
    if spelling not in _SPELLINGS:
        raise_invalid(arg, expected, name)
    return _SPELLINGS[spelling]


def _split(name, arg, extra, expected, received):
    """``(spelling, k)``: the lower-cased name as written (aliases kept) and its ``k``."""
    if not isinstance(name, str):
        raise_invalid(arg, expected, received, TypeError)
    text = _normalize(name)
    if text in extra:
        return text, None
    base, sep, k_text = text.partition("@")
    base, k_text = base.strip(), k_text.strip()
    if (not sep or base not in _SPELLINGS or not (k_text.isascii() and k_text.isdigit())
            or int(k_text) < 1):
        raise_invalid(arg, expected, received)
    return base, int(k_text)


def parse_metric_name(name, *, arg="metrics", extra=(), expected=None, canonical=True):
    """Parse one metric name ``"<name>@<k>"`` (or a bare name from ``extra``).

    Parameters
    ----------
    name : str
        ``"<name>@<k>"`` with ``<name>`` one of ``recall``, ``precision``, ``ndcg``, ``ap``
        (alias ``average_precision``), ``hit_rate``, ``mrr`` and ``<k>`` an int >= 1, or one
        of ``extra``. Case is ignored, and so is whitespace around the name and the ``@``.
    arg : str, default="metrics"
        The argument named in the error message.
    extra : sequence of str, default=()
        Lower-case names accepted without ``@<k>`` (e.g. ``("rmse", "mae")``).
    expected : str, optional
        The "expected" part of the error message; by default
        :func:`expected_metric_names` of ``extra``.
    canonical : bool, default=True
        Return the canonical name (``"average_precision"`` becomes ``"ap"``); with
        ``False`` the lower-cased name as written is returned.

    Returns
    -------
    name : str
        The metric name, lower case, without ``@<k>``.
    k : int or None
        The cut-off; ``None`` for a name from ``extra``.

    Raises
    ------
    TypeError
        If ``name`` is not a str.
    ValueError
        If ``name`` is not a known metric, lacks ``@<k>`` or has ``k < 1``.

    Examples
    --------
    >>> parse_metric_name("NDCG@10")
    ('ndcg', 10)
    >>> parse_metric_name(" average_precision @ 5 ")
    ('ap', 5)
    >>> parse_metric_name("Average_Precision@5", canonical=False)
    ('average_precision', 5)
    >>> parse_metric_name("RMSE", extra=("rmse", "mae"))
    ('rmse', None)
    >>> parse_metric_name("ndcg@0", arg="scoring")
    Traceback (most recent call last):
    ...
    ValueError: scoring must be a metric name '<name>@<k>' with ...; got 'ndcg@0'.
    """
    extra = tuple(extra)
    if expected is None:
        expected = expected_metric_names(extra)
    spelling, k = _split(name, arg, extra, expected, f"<{describe(name)}>")
    return (_SPELLINGS.get(spelling, spelling) if canonical else spelling), k


def parse_metric_names(metrics, *, arg="metrics", extra=(), canonical=True, unique=False):
    """Parse a metric name or a non-empty list/tuple of them.

    Parameters
    ----------
    metrics : str or list or tuple of str
        Names accepted by :func:`parse_metric_name`.
    arg : str, default="metrics"
        The argument named in the error message.
    extra : sequence of str, default=()
        Lower-case names accepted without ``@<k>``.
    canonical : bool, default=True
        As in :func:`parse_metric_name`.
    unique : bool, default=False
        Drop every entry that repeats an earlier one once case and whitespace are ignored
        (``"NDCG@10"`` repeats ``"ndcg@10"``; an alias is a different spelling).

    Returns
    -------
    list of tuple
        ``(key, name, k)`` in the given order: ``key`` the entry as given, ``name`` and
        ``k`` as returned by :func:`parse_metric_name`.

    Raises
    ------
    TypeError
        If ``metrics`` is neither a str nor a list/tuple, or holds a non-str.
    ValueError
        If ``metrics`` is empty or holds an unknown name.

    Examples
    --------
    >>> parse_metric_names(["NDCG@10", "recall@20", "ndcg@10"], unique=True)
    [('NDCG@10', 'ndcg', 10), ('recall@20', 'recall', 20)]
    >>> parse_metric_names("mae", extra=("rmse", "mae"))
    [('mae', 'mae', None)]
    >>> parse_metric_names(["ndcg@10", "auc@5"])
    Traceback (most recent call last):
    ...
    ValueError: metrics must be ...; got 'auc@5' in ['ndcg@10', 'auc@5'].
    """
    extra = tuple(extra)
    expected = expected_metric_names(extra, many=True)
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not isinstance(metrics, (list, tuple)):
        raise_invalid(arg, expected, metrics, TypeError)
    if len(metrics) == 0:
        raise_invalid(arg, expected, metrics)
    parsed, seen = [], set()
    for key in metrics:
        received = (f"<{describe(key)}>" if len(metrics) == 1
                    else f"<{describe(key)} in {describe(metrics)}>")
        spelling, k = _split(key, arg, extra, expected, received)
        norm = spelling if k is None else f"{spelling}@{k}"
        if unique and norm in seen:
            continue
        seen.add(norm)
        parsed.append((key, (_SPELLINGS.get(spelling, spelling) if canonical else spelling), k))
    return parsed
