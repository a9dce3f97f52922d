"""The one training loop every gradient-trained skrec model runs.

It owns epochs, batches, the learning-rate schedule, early stopping with best-state restore,
``history_``, the NaN guard, Ctrl-C handling, checkpoints and the progress bar; a model only
supplies its batches and a loss (see :class:`skrec.base.TorchRecommender`).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass

import torch

__all__ = ["make_optimizer", "lr_factor", "LoopSettings", "run_training", "TrainingDiverged"]

OPTIMIZERS = ("adam", "adamw", "adagrad", "sgd", "sparse_adam")
LR_SCHEDULES = ("cosine", "triangular")


class TrainingDiverged(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite."""


def make_optimizer(name, params, learning_rate, weight_decay=0.0, betas=(0.9, 0.999)):
    """Build one of skrec's optimizers.

    Parameters
    ----------
    name : {"adam", "adamw", "adagrad", "sgd", "sparse_adam"}
    params : iterable of torch.nn.Parameter
    learning_rate : float
    weight_decay : float, default=0.0
        Decoupled weight decay for ``"adamw"``, L2 for the others (not for
        ``"sparse_adam"``, which has none; models add their own L2 to the loss).
    betas : tuple of float, default=(0.9, 0.999)
        Adam's moment decay rates (``"adam"``, ``"adamw"``, ``"sparse_adam"``).

    Returns
    -------
    torch.optim.Optimizer

    Examples
    --------
    >>> p = torch.nn.Parameter(torch.zeros(2))
    >>> type(make_optimizer("adam", [p], 0.01)).__name__
    'Adam'
    """
    if name == "adam":
        return torch.optim.Adam(params, lr=learning_rate, betas=betas, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=learning_rate, betas=betas, weight_decay=weight_decay)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=learning_rate, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=learning_rate, momentum=0.9, weight_decay=weight_decay)
    if name == "sparse_adam":
        return torch.optim.SparseAdam(list(params), lr=learning_rate, betas=betas)
    raise AssertionError(name)  # validated by the estimator


def lr_factor(schedule, step, steps_per_cycle):
    """Multiplier of the base learning rate at global ``step`` (seed 001's schedules).

    Parameters
    ----------
    schedule : {None, "cosine", "triangular"}
        ``"cosine"``: cosine annealing from 1 down to 0.1 over each cycle, then a restart.
        ``"triangular"``: from 0.1 up to 1 in the first half of each cycle, back down in the
        second half.
    step : int
        Batches seen so far.
    steps_per_cycle : int
        Cycle length in batches.

    Returns
    -------
    float

    Examples
    --------
    >>> lr_factor("cosine", 0, 10), round(lr_factor("cosine", 5, 10), 3)
    (1.0, 0.55)
    >>> lr_factor("triangular", 0, 10), lr_factor("triangular", 5, 10)
    (0.1, 1.0)
    """
    if schedule is None:
        return 1.0
    t = (step % steps_per_cycle) / steps_per_cycle
    if schedule == "cosine":
        return 0.1 + 0.9 * (1 + math.cos(math.pi * t)) / 2
    return 0.1 + 0.9 * (1 - abs(2 * t - 1))


@dataclass
class LoopSettings:
    """Hyper-parameters of the loop, copied from the estimator at the start of ``fit``."""

    max_iter: int
    learning_rate: float
    early_stopping: bool
    n_iter_no_change: int
    tol: float
    verbose: int
    lr_schedule: str | None = None
    lr_cycle: int = 2
    checkpoint_every: int = 0
    checkpoint_path: str | None = None


def _state_copy(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def run_training(estimator, module, optimizer, batches, loss_fn, settings, *, steps_per_epoch,
                 validate=None, history=None):
    """Train ``module`` for up to ``settings.max_iter`` epochs.

    Parameters
    ----------
    estimator : TorchRecommender
        Receives ``history_``, ``n_iter_``, ``best_iteration_``, ``best_score_`` and, for
        checkpoints, is pickled as a whole.
    module : torch.nn.Module
    optimizer : torch.optim.Optimizer
    batches : callable
        ``batches()`` returns an iterable of batches for one epoch (index tensors on the
        device, drawn with the estimator's generator).
    loss_fn : callable
        ``loss_fn(batch)`` returns the scalar loss to minimise on that batch.
    settings : LoopSettings
    steps_per_epoch : int
        Batches per epoch (the learning-rate cycle is ``lr_cycle`` epochs of them).
    validate : callable, optional
        ``validate()`` returns a 0-d tensor, lower is better (a validation loss, or a
        negated ranking metric). When given, early stopping monitors it; otherwise the
        training loss is monitored.
    history : list of dict, optional
        Earlier epochs (``warm_start``); new epochs are appended.

    Returns
    -------
    list of dict
        One record per epoch: ``epoch``, ``loss``, ``lr``, ``time`` (seconds of the epoch's
        training steps, validation excluded) and ``val_loss`` when validating.

    Notes
    -----
    The training loss is accumulated on the device and read once per epoch: there is no
    host synchronisation per batch. With a validation function, the parameters of the best
    epoch are restored at the end (also after Ctrl-C). A NaN/inf training loss raises
    :class:`TrainingDiverged` with a hint to lower the learning rate.
    """
    from tqdm.auto import tqdm

    history = list(history or [])
    start = len(history)
    monitor = "val_loss" if validate is not None else "loss"
    best = min((h[monitor] for h in history if monitor in h), default=math.inf)
    best_state = None
    estimator.best_iteration_ = getattr(estimator, "best_iteration_", None) if start else None
    estimator.best_score_ = -best if math.isfinite(best) else None
    if start and validate is not None:
        best_state = _state_copy(module)  # a warm start begins from the model it was given
    no_improve, step = 0, start * steps_per_epoch
    for group in optimizer.param_groups:  # a reused optimizer may hold a scheduled rate
        group["lr"] = settings.learning_rate
    bar = tqdm(range(start, start + settings.max_iter), disable=not settings.verbose,
               desc=type(estimator).__name__, leave=False)
    try:
        for epoch in bar:
            module.train()
            total, n_batches, started = None, 0, time.perf_counter()
            for batch in batches():
                if settings.lr_schedule is not None:
                    f = lr_factor(settings.lr_schedule, step, settings.lr_cycle * steps_per_epoch)
                    for group in optimizer.param_groups:
                        group["lr"] = settings.learning_rate * f
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(batch)
                loss.backward()
                optimizer.step()
                total = loss.detach() if total is None else total + loss.detach()
                n_batches += 1
                step += 1
            record = {"epoch": epoch + 1, "loss": float(total) / max(n_batches, 1),  # one sync per epoch
                      "lr": optimizer.param_groups[0]["lr"], "time": time.perf_counter() - started}
            if not math.isfinite(record["loss"]):
                raise TrainingDiverged(
                    f"The training loss became {record['loss']} at epoch {epoch + 1} of "
                    f"{type(estimator).__name__}; try a smaller learning_rate (it is "
                    f"{settings.learning_rate:g}) or a larger alpha."
                )
            if validate is not None:
                module.eval()
                with torch.no_grad():
                    record["val_loss"] = float(validate())
            history.append(record)
            value = record[monitor]
            if value < best - settings.tol:
                best, no_improve = value, 0
                estimator.best_iteration_, estimator.best_score_ = epoch + 1, -best
                if validate is not None:
                    best_state = _state_copy(module)
            else:
                no_improve += 1
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "epoch"})
            estimator.history_, estimator.n_iter_ = history, epoch + 1
            if settings.checkpoint_every and (epoch + 1) % settings.checkpoint_every == 0:
                _save_checkpoint(estimator, module, settings.checkpoint_path, epoch + 1)
            if no_improve >= settings.n_iter_no_change and (validate is None or settings.early_stopping):
                break
    except KeyboardInterrupt:
        warnings.warn(
            f"{type(estimator).__name__}.fit interrupted after {len(history)} epochs; keeping "
            f"{'the best model so far' if best_state is not None else 'the model as it is'}.",
            RuntimeWarning,
            stacklevel=3,
        )
    finally:
        bar.close()
    if best_state is not None and settings.early_stopping:
        module.load_state_dict(best_state)
    estimator.history_, estimator.n_iter_ = history, len(history)
    return history


def _save_checkpoint(estimator, module, path, epoch):
    """Write the estimator as it is after ``epoch`` (loadable with joblib, resumable).

    The snapshot holds the parameters of that epoch (with ``best_iteration_`` recorded), not
    the best state, which a resumed run measures anew.
    """
    import joblib

    if path is None:
        raise AssertionError("checkpoint_path is validated by the estimator")
    target = str(path).format(epoch=epoch)
    snapshot = copy.copy(estimator)
    snapshot.module_ = module
    joblib.dump(snapshot, target)
