"""Data-parallel training under ``torchrun``."""

from __future__ import annotations

import contextlib
import datetime
import os

import torch

from .._torch.distributed import DataParallelGroup, activate, deactivate
from ..utils.validation import raise_invalid

__all__ = ["data_parallel"]

_LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@contextlib.contextmanager
def data_parallel(backend=None, *, timeout=None):
    """Train every gradient-fitted estimator data-parallel across the processes of a launch.

    Inside the block, ``fit`` of a model trained by mini-batch gradient descent
    (``MFRegressor(solver="gradient")``, ``BPRRanker``, ``AutoencoderRecommender``, ``SequenceTransformer``,
    gradient ``BaselineBiases``) splits every batch across the ranks: all ranks draw the same
    batch order from the model's ``random_state``, each computes the loss of every
    ``world_size``-th sample of the batch, the gradients are summed across ranks in one
    all-reduce per step (weighted by each rank's share, so that the step equals the step of
    the whole batch on one process, the scheme of PyTorch's ``DistributedDataParallel``), and
    every rank applies the same update. All ranks end with the same fitted estimator; save it
    from rank 0. Negatives and noise are drawn per rank, so results match a one-process fit
    with the same ``batch_size`` statistically, and exactly for models that draw nothing but
    the batch order (``MFRegressor``). Validation and early stopping run on every rank over
    the whole validation split. Closed-form, alternating and sampling solvers (``EASE``,
    ``ALSRanker``, ``ItemKNN``, ``Popularity``, ``MFRegressor``'s default Gibbs sampler) are not
    split: every rank solves the whole problem.

    Parameters
    ----------
    backend : {"gloo", "nccl"}, optional
        Used when the block creates the process group: ``"nccl"`` where CUDA is available,
        else ``"gloo"``. With NCCL each rank works on GPU ``LOCAL_RANK`` (set as the current
        device), so estimators use ``device="auto"`` or ``"cuda"``.
    timeout : float, optional
        Seconds a collective may wait for the other ranks (torch's default when ``None``).

    Yields
    ------
    skrec._torch.distributed.DataParallelGroup
        ``rank``, ``world_size`` and ``backend`` of the group.

    Raises
    ------
    ValueError
        When no process group exists and the ``torchrun`` variables (``RANK``,
        ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) are not set.

    Notes
    -----
    Launch a script with ``torchrun --nproc_per_node=N script.py``; a process group created
    beforehand (``torch.distributed.init_process_group``) is used as it is and left open. The
    group is created here only when absent and destroyed when the block ends. Each rank
    holds the whole training matrix: the scheme splits the work, not the data.

    Examples
    --------
    A one-process group (``torchrun`` sets up real ones):

    >>> import tempfile, torch.distributed as dist
    >>> from skrec import MFRegressor
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(60, 30, kind="explicit", random_state=0).X
    >>> store = tempfile.NamedTemporaryFile(delete=False).name
    >>> dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    >>> with data_parallel() as group:
    ...     model = MFRegressor(n_factors=4, solver="gradient", max_iter=3, device="cpu").fit(X)
    >>> group.world_size, model.n_iter_
    (1, 3)
    >>> dist.destroy_process_group()
    """
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("data_parallel needs torch.distributed, which this build of PyTorch lacks.")
    if backend is not None and backend not in ("gloo", "nccl"):
        raise_invalid("backend", "'gloo', 'nccl' or None", backend)
    created = not dist.is_initialized()
    if created:
        missing = [name for name in _LAUNCH_VARIABLES if name not in os.environ]
        if missing:
            raise ValueError("data_parallel needs a process group: launch the script with torchrun "
                             f"(the variables {', '.join(missing)} are not set) or call "
                             "torch.distributed.init_process_group first.")
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        kwargs = {} if timeout is None else {"timeout": datetime.timedelta(seconds=timeout)}
        dist.init_process_group(backend, **kwargs)
    group = DataParallelGroup(rank=dist.get_rank(), world_size=dist.get_world_size(),
                              backend=str(dist.get_backend()))
    activate(group)
    try:
        yield group
    finally:
        deactivate(group)
        if created:
            dist.destroy_process_group()
