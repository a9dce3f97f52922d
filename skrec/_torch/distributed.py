"""Data-parallel gradient training over a ``torch.distributed`` process group.

:func:`skrec.parallel.data_parallel` activates a :class:`DataParallelGroup`; while it is
active, every gradient trainer built by an estimator's ``fit`` trains data-parallel: each
rank computes the loss of its share of every global batch, the gradients are summed across
ranks (weighted by each rank's share, so the step is the step of the whole batch) and every
rank applies the same update, so the ranks hold identical models throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["DataParallelGroup", "active_group", "activate", "deactivate"]

_ACTIVE = []


@dataclass(frozen=True)
class DataParallelGroup:
    """The ranks one model is trained on.

    Attributes
    ----------
    rank : int
        This process's rank, ``0 <= rank < world_size``.
    world_size : int
        Number of processes training the model.
    backend : str
        The process group's backend (``"gloo"`` or ``"nccl"``).

    Examples
    --------
    >>> group = DataParallelGroup(rank=1, world_size=2, backend="gloo")
    >>> part, share = group.shard(torch.arange(5))
    >>> part.tolist(), share
    ([1, 3], 0.4)
    """

    rank: int
    world_size: int
    backend: str

    def shard(self, idx):
        """This rank's share of a global batch: every ``world_size``-th index from ``rank``.

        Returns ``(indices, share)`` with ``share = len(indices) / len(idx)``.
        """
        part = idx[self.rank::self.world_size]
        return part, part.numel() / max(idx.numel(), 1)

    def all_reduce_gradients(self, params):
        """Sum the gradients of ``params`` across ranks in one flat buffer (missing ones count as 0).

        Sparse gradients (``sparse_adam``) travel dense and come back sparse by rows.
        """
        import torch.distributed as dist

        params = [p for p in params if p.requires_grad]
        grads = []
        for p in params:
            g = p.grad
            if g is None:
                grads.append(torch.zeros_like(p))
            else:
                grads.append(g.to_dense() if g.is_sparse else g)
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for p, g in zip(params, grads):
            value = flat[offset:offset + g.numel()].view_as(g)
            offset += g.numel()
            if p.grad is not None and p.grad.is_sparse:
                p.grad = value.to_sparse(sparse_dim=1)
            elif p.grad is None:
                p.grad = value.clone()
            else:
                p.grad.copy_(value)

    def all_reduce(self, tensor):
        """The sum of ``tensor`` over the ranks (a new tensor)."""
        import torch.distributed as dist

        out = tensor.clone()
        dist.all_reduce(out)
        return out

    def broadcast_module(self, module):
        """Give every rank rank 0's parameters and buffers."""
        import torch.distributed as dist

        with torch.no_grad():
            for value in module.state_dict().values():
                dist.broadcast(value, src=0)


def active_group():
    """The innermost active :class:`DataParallelGroup`, ``None`` outside ``data_parallel``.

    Examples
    --------
    >>> active_group() is None
    True
    """
    return _ACTIVE[-1] if _ACTIVE else None


def activate(group):
    """Make ``group`` the active group (``data_parallel`` calls it)."""
    _ACTIVE.append(group)


def deactivate(group):
    """Remove ``group`` from the active groups."""
    _ACTIVE.remove(group)
