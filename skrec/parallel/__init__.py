"""Running skrec beyond one process: data-parallel training and cluster-wide batch scoring.

- :func:`data_parallel` trains one model on several processes (and GPUs) with
  ``torch.distributed``, launched by ``torchrun``.
- :func:`recommend_blocks` scores row blocks of a matrix too large for one machine on a Dask
  cluster; :class:`TorchWorker` sets up every Dask worker for torch (threads, allocator).

Model selection on a cluster needs nothing from skrec: scikit-learn's searches run on joblib's
Dask or Ray backends as they are (see the scaling guide in the documentation). The Dask
helpers need ``dask[distributed]`` (``pip install skrec[distributed]``).
"""

from ._ddp import data_parallel

__all__ = ["data_parallel", "recommend_blocks", "TorchWorker"]


def __getattr__(name):  # the Dask helpers import dask.distributed only when asked for
    if name in ("recommend_blocks", "TorchWorker"):
        from . import _dask

        return getattr(_dask, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
