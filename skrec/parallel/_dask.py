"""Dask helpers: torch threads per worker, batch scoring in row blocks."""

from __future__ import annotations

import ctypes
import os
import sys

import numpy as np
import scipy.sparse as sp

try:
    from distributed import WorkerPlugin, get_client
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("skrec's Dask helpers need dask.distributed: pip install 'skrec[distributed]'") from exc

from ..utils.validation import check_items, check_k, check_param, raise_invalid

__all__ = ["TorchWorker", "recommend_blocks"]


class TorchWorker(WorkerPlugin):
    """A Dask worker plugin that sets up every worker for torch fits: threads and allocator.

    Two settings cost CPU fits a lot inside Dask workers:

    - **Threads.** Several workers per machine, or several threads per worker, each running
      torch with all cores oversubscribe the CPU. A worker started by a nanny
      (``processes=True``, ``dask worker``) gets ``OMP_NUM_THREADS=1`` from Dask's defaults;
      ``n_threads`` sets torch's intra-op pool explicitly (e.g. a worker per GPU that should
      use several cores).
    - **The allocator.** The same defaults set ``MALLOC_TRIM_THRESHOLD_=65536``, which also
      turns off glibc's adaptive ``mmap`` threshold: every tensor above 128 kB is then mapped
      and unmapped afresh, and its pages faulted in again, which made ``BPRRanker`` fits 1.6 to
      1.9 times slower in a worker than in a plain process on a 2-core machine. The plugin
      raises the threshold again with ``mallopt(M_MMAP_THRESHOLD, mmap_threshold)`` (on glibc;
      elsewhere it does nothing).

    Register it right after the cluster starts: a worker thread that has already run torch
    code keeps its thread setting.

    Parameters
    ----------
    n_threads : int or None, default=1
        Threads of torch's intra-op pool in each worker process; ``None`` leaves it.
    mmap_threshold : int or None, default=33554432
        Bytes above which glibc serves an allocation by ``mmap`` (32 MiB, the ceiling of its
        adaptive threshold); ``None`` leaves the allocator alone.

    Attributes
    ----------
    allocator_set : bool
        On a worker, after setup: whether ``mallopt`` accepted the threshold.

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster, \\
    ...         Client(cluster) as client:
    ...     _ = client.register_plugin(TorchWorker(2))
    ...     threads = client.submit(lambda: __import__("torch").get_num_threads()).result()
    >>> threads
    2
    """

    name = "skrec-torch-worker"

    def __init__(self, n_threads=1, *, mmap_threshold=32 * 2**20):
        check_param("n_threads", n_threads, kind="int", low=1, allow_none=True)
        check_param("mmap_threshold", mmap_threshold, kind="int", low=0, allow_none=True)
        self.n_threads = n_threads
        self.mmap_threshold = mmap_threshold
        self.allocator_set = False

    def setup(self, worker):
        import torch

        if self.n_threads is not None:
            os.environ["OMP_NUM_THREADS"] = str(self.n_threads)
            torch.set_num_threads(self.n_threads)
        if self.mmap_threshold is not None and sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL("libc.so.6")
            except OSError:  # not glibc
                return
            self.allocator_set = libc.mallopt(_M_MMAP_THRESHOLD, int(self.mmap_threshold)) == 1


_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def _recommend_block(estimator, block, k, exclude_seen, items, path):
    ids, scores = estimator.recommend(block, k, exclude_seen=exclude_seen, items=items)
    if path is None:
        return ids, scores
    np.savez(path, ids=ids, scores=scores)
    return path


def recommend_blocks(estimator, X, k=10, *, client=None, block_rows=100_000, exclude_seen=True, items=None,
                     output_dir=None, resources=None):
    """Top-``k`` recommendations of row blocks, computed on a Dask cluster.

    The fitted estimator is sent to every worker once; each block of rows is scored by
    ``estimator.recommend`` on the worker that holds it, so a matrix that never fits in one
    machine's memory can be scored block by block where it was loaded.

    Parameters
    ----------
    estimator : fitted skrec estimator
    X : sparse matrix of shape (n_rows, n_items_), or sequence of blocks
        Either one matrix, split into blocks of ``block_rows`` rows (each sent from here to a
        worker), or the blocks themselves in order: sparse matrices, Dask futures, or
        ``dask.delayed`` objects that load a block on a worker (e.g.
        ``dask.delayed(scipy.sparse.load_npz)(path)``). Blocks from futures and delayed
        objects never pass through this process.
    k : int, default=10
        List length.
    client : distributed.Client, optional
        The cluster's client; the current one (``distributed.get_client()``) by default.
    block_rows : int, default=100_000
        Rows per block when ``X`` is one matrix.
    exclude_seen : bool, default=True
    items : array-like of int, optional
        As in ``recommend``.
    output_dir : str or path-like, optional
        Write each block's result to ``output_dir/block-00000.npz`` (arrays ``ids`` and
        ``scores``) on the worker, and return the paths: the lists are never gathered here.
        The folder must be reachable from every worker (shared storage).
    resources : dict, optional
        Dask resources each block's task needs, e.g. ``{"GPU": 1}`` for workers started
        with ``--resources GPU=1``.

    Returns
    -------
    (ids, scores) : tuple of ndarray, shape (n_rows, k)
        As ``estimator.recommend`` returns them for all the rows, in block order, when
        ``output_dir`` is ``None``.
    paths : list of str
        The written files, in block order, when ``output_dir`` is given.

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> from skrec import EASE
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(300, 50, random_state=0).X
    >>> model = EASE(device="cpu").fit(X)
    >>> with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster, \\
    ...         Client(cluster) as client:
    ...     ids, scores = recommend_blocks(model, X, k=5, client=client, block_rows=100)
    >>> bool((ids == model.recommend(X, k=5)[0]).all())
    True
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "n_items_")
    check_param("block_rows", block_rows, kind="int", low=1)
    check_param("exclude_seen", exclude_seen, "bool")
    if resources is not None and not isinstance(resources, dict):
        raise_invalid("resources", "a dict such as {'GPU': 1} or None", resources, TypeError)
    if client is None:
        try:
            client = get_client()
        except ValueError:
            raise ValueError("recommend_blocks needs a Dask client: pass client= or create one first "
                             "(distributed.Client(...)).") from None
    items = check_items(items, estimator.n_items_)
    k = check_k(k, estimator.n_items_ if items is None else items.size)
    if sp.issparse(X):
        blocks = [client.scatter(X[start:start + block_rows], hash=False)
                  for start in range(0, X.shape[0], block_rows)]
    elif isinstance(X, (list, tuple)):
        blocks = [client.compute(b) if hasattr(b, "__dask_graph__") else b for b in X]
    else:
        raise_invalid("X", "a sparse matrix or a list of blocks (sparse matrices, Dask futures or "
                           "dask.delayed objects)", X, TypeError)
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
    model = client.scatter(estimator, broadcast=True, hash=False)
    futures = [client.submit(_recommend_block, model, block, k, exclude_seen, items,
                             None if output_dir is None else os.path.join(output_dir, f"block-{i:05d}.npz"),
                             resources=resources, pure=False)
               for i, block in enumerate(blocks)]
    results = client.gather(futures)
    if output_dir is not None:
        return results
    if not results:
        return np.empty((0, k), dtype=np.int64), np.empty((0, k), dtype=np.float32)
    return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])
