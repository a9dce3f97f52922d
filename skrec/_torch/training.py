"""The training seam: one epoch protocol for every solver, one loop, small callbacks.

A *trainer* holds everything that exists only while a model is fitted — the module being
trained, the data on the device, the optimizer, the generator, the step count — and
exposes one epoch at a time (:class:`Trainer`). Gradient descent, alternating least squares
and closed-form solves all implement it. :func:`fit_epochs` drives any trainer for up to
``max_iter`` epochs and returns a :class:`TrainingResult`; the estimator then assigns its own
fitted attributes and drops the trainer. Early stopping, learning-rate schedules,
checkpoints and the progress bar are :class:`Callback` objects passed to the loop.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import torch

from ..sampling import index_batches
from .device import make_generator

__all__ = [
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "GradientTrainer",
    "LRSchedule",
    "ProgressBar",
    "Trainer",
    "TrainingDiverged",
    "TrainingResult",
    "fit_epochs",
    "lr_factor",
    "make_optimizer",
]

OPTIMIZERS = ("adam", "adamw", "adagrad", "sgd", "sparse_adam")
LR_SCHEDULES = ("cosine", "triangular")
HISTORY_KEYS = ("epoch", "loss", "val_loss", "lr", "time")


class TrainingDiverged(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite.

    Examples
    --------
    >>> issubclass(TrainingDiverged, FloatingPointError)
    True
    """


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
        return torch.optim.Adam(params, lr=learning_rate, betas=betas, weight_decay=weight_decay, fused=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=learning_rate, betas=betas, weight_decay=weight_decay, fused=True)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=learning_rate, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=learning_rate, momentum=0.9, weight_decay=weight_decay)
    if name == "sparse_adam":
        return torch.optim.SparseAdam(list(params), lr=learning_rate, betas=betas)
    raise AssertionError(name)  # validated by the estimator


def lr_factor(schedule, step, steps_per_cycle):
    """Multiplier of the base learning rate at global ``step``.

    Parameters
    ----------
    schedule : {None, "cosine", "triangular"}
        ``"cosine"``: cosine annealing from 1 down to 0.1 over each cycle, then a restart
        (SGDR, Loshchilov & Hutter 2017). ``"triangular"``: from 0.1 up to 1 in the first
        half of each cycle, back down in the second half (cyclical learning rates, Smith 2017).
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


# --------------------------------------------------------------------------- trainers
class Trainer:
    """One solver's fit-time state, trained one epoch at a time.

    Subclasses set ``module`` (the ``nn.Module`` being fitted) and implement
    :meth:`train_epoch`. A trainer that can measure held-out quality sets
    ``has_validation = True`` and implements :meth:`validate`. ``max_epochs`` caps the
    number of epochs the loop runs (1 for a closed-form solve). Whatever the estimator must
    keep after the fit besides the module (statistics its inference reads) is returned by
    :meth:`fitted_attributes`.

    Examples
    --------
    >>> class Mean(Trainer):
    ...     max_epochs = 1
    ...     def __init__(self, x):
    ...         self.module = torch.nn.Module()
    ...         self.module.register_buffer("mean", torch.zeros(()))
    ...         self.x = x
    ...     def train_epoch(self):
    ...         self.module.mean.copy_(self.x.mean())
    ...         return float(((self.x - self.module.mean) ** 2).mean())
    >>> fit_epochs(Mean(torch.tensor([1.0, 3.0])), max_iter=10).history[0]["loss"]
    1.0
    """

    module: torch.nn.Module
    has_validation = False
    stops_early = True  # False: every epoch runs (a sampler's chain), whatever the estimator's patience
    max_epochs = None  # no cap
    n_steps = 0  # optimizer steps taken so far (gradient trainers)

    def train_epoch(self):  # pragma: no cover - abstract
        """Run one epoch and return its training loss as a float (one host sync)."""
        raise NotImplementedError

    def validate(self):
        """Held-out quality after the epoch, lower is better (``None`` when not validating)."""
        return None

    @property
    def learning_rate(self):
        """The learning rate at the end of the epoch (``None`` for non-gradient solvers)."""
        return None

    def snapshot(self):
        """A copy of the module's parameters (best-state restore)."""
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def restore(self, state):
        """Load a :meth:`snapshot` back into the module."""
        self.module.load_state_dict(state)

    def optimizer_state(self):
        """Optimizer state to continue from in a later warm fit (``None`` when stateless)."""
        return None

    def fitted_attributes(self):
        """``{name: value}`` the estimator sets after the fit besides ``module_``."""
        return {}


class GradientTrainer(Trainer):
    """Mini-batch gradient descent: the optimizer, the generator and the batch loss.

    Subclasses set ``n_samples`` (what an epoch permutes and batches over) and implement
    :meth:`loss` for a batch of sample indices; :meth:`validation_loss` (when the trainer
    holds validation data, with ``has_validation = True``) defaults to the mean batch loss
    over ``validation_samples`` by :meth:`validation_batch_loss`.

    Parameters
    ----------
    module : torch.nn.Module
    generator : torch.Generator
        Draws the batch order and every sample of the loss, on the module's device.
    optimizer : str
        One of ``"adam"``, ``"adamw"``, ``"adagrad"``, ``"sgd"``, ``"sparse_adam"``.
    learning_rate : float
    batch_size : int
    weight_decay : float, default=0.0
    betas : (float, float), default=(0.9, 0.999)
    optimizer_state : dict, optional
        A state dict of the same optimizer to continue from (``warm_start``).
    n_steps : int, default=0
        Steps taken by earlier fits (schedules and annealing continue from there).
    validation_seed : int, optional
        Seeds a fresh generator for every validation pass, so that a validation which
        samples (negatives, dropout-free noise) measures every epoch on the same draws.

    Examples
    --------
    >>> class LeastSquares(GradientTrainer):
    ...     def __init__(self, x, **kw):
    ...         module = torch.nn.Linear(1, 1, bias=False)
    ...         super().__init__(module, torch.Generator().manual_seed(0), **kw)
    ...         self.x, self.n_samples = x, x.shape[0]
    ...     def loss(self, idx):
    ...         x = self.x[idx].unsqueeze(1)
    ...         return ((self.module(x) - 2 * x) ** 2).mean()
    >>> t = LeastSquares(torch.randn(64), optimizer="adam", learning_rate=0.1, batch_size=16)
    >>> result = fit_epochs(t, max_iter=60)
    >>> round(float(t.module.weight.detach()), 2)
    2.0
    """

    def __init__(self, module, generator, *, optimizer, learning_rate, batch_size, weight_decay=0.0,
                 betas=(0.9, 0.999), optimizer_state=None, n_steps=0, validation_seed=None):
        self.module = module
        self.validation_seed = validation_seed
        self.generator = generator
        self.base_learning_rate = learning_rate
        self.batch_size = batch_size
        self.optimizer = make_optimizer(optimizer, module.parameters(), learning_rate, weight_decay, betas)
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
            for group in self.optimizer.param_groups:  # a saved state may hold a scheduled rate
                group["lr"] = learning_rate
        self.n_steps = n_steps
        self.step_hooks = []  # called with the global step before each optimizer step
        self.group = None  # a DataParallelGroup once distribute() is called
        self.order_generator = generator  # draws the batch order

    n_samples: int

    def distribute(self, group):
        """Train data-parallel over ``group`` (a :class:`~skrec._torch.distributed.DataParallelGroup`).

        Every rank draws the same batch order from ``order_generator`` (seeded alike on every
        rank) and computes the loss of its share of each batch; its other draws (negatives,
        noise) come from a generator of its own, so that the ranks' samples differ. Rank 0's
        parameters are broadcast first, so the ranks start from one model.
        """
        self.group = group
        self.order_generator = self.generator
        self.generator = make_generator(self.generator.initial_seed() + 1_000_003 * (group.rank + 1),
                                        self._device())
        group.broadcast_module(self.module)

    def loss(self, idx):  # pragma: no cover - abstract
        """Scalar loss of the batch of sample indices ``idx`` (a device tensor)."""
        raise NotImplementedError

    @property
    def steps_per_epoch(self):
        return max(1, math.ceil(self.n_samples / self.batch_size))

    @property
    def learning_rate(self):
        return self.optimizer.param_groups[0]["lr"]

    def set_learning_rate(self, value):
        for group in self.optimizer.param_groups:
            group["lr"] = value

    def train_epoch(self):
        self.module.train()
        total = torch.zeros((), device=self._device())
        n_batches = 0
        group = self.group
        for idx in index_batches(self.n_samples, self.batch_size, self.order_generator):
            for hook in self.step_hooks:
                hook(self.n_steps)
            self.optimizer.zero_grad(set_to_none=True)
            if group is None:
                loss = self.loss(idx)
                loss.backward()
            else:  # this rank's share of the batch, weighted so that the summed gradient is the batch's
                idx, share = group.shard(idx)
                loss = self.loss(idx) * share if idx.numel() else total.new_zeros(())
                if loss.requires_grad:
                    loss.backward()
                group.all_reduce_gradients(self.module.parameters())
            self.optimizer.step()
            total = total + loss.detach()
            n_batches += 1
            self.n_steps += 1
        if group is not None:
            total = group.all_reduce(total)
        return float(total) / max(n_batches, 1)  # the one host sync of the epoch

    def validate(self):
        if not self.has_validation:
            return None
        self.module.eval()
        with torch.no_grad():
            return float(self.validation_loss())

    def validation_loss(self):
        """0-d tensor, lower is better; default: mean of :meth:`validation_batch_loss`."""
        n = self.validation_samples
        total = torch.zeros((), device=self._device())
        generator = self.validation_generator()
        for idx in index_batches(n, self.batch_size, generator, shuffle=False):
            total = total + self.validation_batch_loss(idx, generator) * idx.shape[0]
        return total / n

    def validation_generator(self):
        """A generator seeded the same way for every validation pass."""
        seed = 0 if self.validation_seed is None else self.validation_seed
        return make_generator(seed, self._device())

    def validation_batch_loss(self, idx, generator):  # pragma: no cover - abstract
        raise NotImplementedError

    def optimizer_state(self):
        return self.optimizer.state_dict()

    def _device(self):
        return self.generator.device


# --------------------------------------------------------------------------- the loop
@dataclass
class TrainingResult:
    """What :func:`fit_epochs` returns.

    Attributes
    ----------
    history : list of dict
        One record per epoch, every one with the keys ``epoch``, ``loss`` (training loss,
        or ``None`` for a closed-form solve), ``val_loss`` (the monitored held-out quantity,
        lower is better, or ``None`` without validation), ``lr`` (``None`` for non-gradient
        solvers) and ``time`` (seconds of the epoch's training work, validation excluded).
    n_iter : int
        Epochs in ``history`` (earlier warm fits included).
    best_iteration : int or None
        Epoch with the best monitored value.
    monitor : str or None
        ``"val_loss"`` or ``"loss"``: what ``best_iteration`` and ``best_score`` refer to.
    best_score : float or None
        Minus the best monitored value: higher is better, as sklearn's ``best_score_``.
    interrupted : bool
        Whether Ctrl-C ended the loop.
    """

    history: list
    n_iter: int
    best_iteration: int | None
    monitor: str | None
    best_score: float | None
    interrupted: bool = False


@dataclass
class LoopState:
    """What callbacks see: the trainer, the history and the best value so far.

    ``improved``: the epoch's monitored value is the lowest so far (``best_value``,
    ``best_iteration``). ``progressed``: it is lower than ``reference``, the value of the last
    epoch that progressed, by more than the early-stopping ``tol`` (what patience counts).
    """

    trainer: Trainer
    history: list
    monitor: str
    best_value: float = math.inf
    best_iteration: int | None = None
    improved: bool = False
    progressed: bool = False
    reference: float = math.inf
    stop: bool = False


class Callback:
    """Hook into :func:`fit_epochs`; every method is optional.

    Examples
    --------
    >>> class Count(Callback):
    ...     def on_train_begin(self, state):
    ...         self.epochs = 0
    ...     def on_epoch_end(self, state, record):
    ...         self.epochs += 1
    >>> issubclass(Count, Callback)
    True
    """

    def on_train_begin(self, state):
        pass

    def on_epoch_end(self, state, record):
        pass

    def on_train_end(self, state):
        pass


class EarlyStopping(Callback):
    """Stop after ``n_iter_no_change`` epochs whose monitored value did not improve by ``tol``.

    Parameters
    ----------
    n_iter_no_change : int
    tol : float
        An epoch counts as progress when it beats the last epoch that progressed by more
        than ``tol``; the best epoch is the one with the lowest value, whatever ``tol``.
    restore_best : bool, default=True
        Load the best epoch's parameters at the end (also after Ctrl-C). Only meaningful
        when a held-out value is monitored.

    Examples
    --------
    >>> EarlyStopping(5, 1e-4).n_iter_no_change
    5
    """

    def __init__(self, n_iter_no_change, tol, *, restore_best=True):
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.restore_best = restore_best

    def on_train_begin(self, state):
        self._bad = 0
        self._best_state = None
        if self.restore_best and state.history:  # a warm start begins from the model it was given
            self._best_state = state.trainer.snapshot()

    def on_epoch_end(self, state, record):
        if state.improved and self.restore_best:
            self._best_state = state.trainer.snapshot()
        if state.progressed:
            self._bad = 0
        else:
            self._bad += 1
        if self._bad >= self.n_iter_no_change:
            state.stop = True

    def on_train_end(self, state):
        if self.restore_best and self._best_state is not None:
            state.trainer.restore(self._best_state)


class LRSchedule(Callback):
    """Per-step learning-rate schedule (see :func:`lr_factor`) for a :class:`GradientTrainer`.

    Parameters
    ----------
    schedule : {"cosine", "triangular"}
    cycle_epochs : int
        Epochs per cycle.

    Examples
    --------
    >>> LRSchedule("cosine", 2).cycle_epochs
    2
    """

    def __init__(self, schedule, cycle_epochs):
        self.schedule = schedule
        self.cycle_epochs = cycle_epochs

    def on_train_begin(self, state):
        trainer = state.trainer
        base, cycle = trainer.base_learning_rate, self.cycle_epochs * trainer.steps_per_epoch

        def hook(step):
            trainer.set_learning_rate(base * lr_factor(self.schedule, step, cycle))

        trainer.step_hooks.append(hook)


class Checkpoint(Callback):
    """Call ``save(epoch, state)`` every ``every`` epochs (the estimator writes the file).

    Examples
    --------
    >>> Checkpoint(5, print).every
    5
    """

    def __init__(self, every, save):
        self.every = every
        self.save = save

    def on_epoch_end(self, state, record):
        if record["epoch"] % self.every == 0:
            self.save(record["epoch"], state)


class ProgressBar(Callback):
    """A tqdm bar over the epochs showing the last record.

    Examples
    --------
    >>> ProgressBar("MFRegressor", total=10).total
    10
    """

    def __init__(self, desc, total):
        self.desc = desc
        self.total = total

    def on_train_begin(self, state):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=self.total, desc=self.desc, leave=False)

    def on_epoch_end(self, state, record):
        self._bar.update(1)
        self._bar.set_postfix({k: f"{v:.4g}" for k, v in record.items()
                               if k != "epoch" and isinstance(v, float)})

    def on_train_end(self, state):
        self._bar.close()


def fit_epochs(trainer, max_iter, *, callbacks=(), history=None, name="model"):
    """Train ``trainer`` for up to ``max_iter`` epochs and return what happened.

    Parameters
    ----------
    trainer : Trainer
    max_iter : int
        Epochs to run in this call (capped by ``trainer.max_epochs``).
    callbacks : sequence of Callback
        Called in order after every epoch; any may stop the loop.
    history : list of dict, optional
        Records of earlier fits (``warm_start``); new epochs are appended to a copy.
    name : str
        Used in messages.

    Returns
    -------
    TrainingResult

    Notes
    -----
    The monitored quantity is ``val_loss`` when the trainer validates, else the training
    ``loss``. A NaN/inf training loss raises :class:`TrainingDiverged`. Ctrl-C ends the loop
    with a ``RuntimeWarning``; the callbacks' ``on_train_end`` still run (so the best state
    is restored) and the result says ``interrupted=True``.

    Examples
    --------
    >>> class Halve(Trainer):
    ...     def __init__(self):
    ...         self.module, self.value = torch.nn.Module(), 1.0
    ...     def train_epoch(self):
    ...         self.value /= 2
    ...         return self.value
    >>> result = fit_epochs(Halve(), 30, callbacks=[EarlyStopping(2, tol=0.01, restore_best=False)])
    >>> result.n_iter, result.monitor
    (10, 'loss')
    """
    history = list(history or [])
    monitor = "val_loss" if trainer.has_validation else "loss"
    earlier = [h[monitor] for h in history if h.get(monitor) is not None]
    state = LoopState(trainer, history, monitor)
    if earlier:
        state.best_value = state.reference = min(earlier)
        state.best_iteration = 1 + min(range(len(history)), key=lambda i: (
            history[i].get(monitor) is None, history[i].get(monitor) or 0.0))
    n_epochs = max_iter if trainer.max_epochs is None else min(max_iter, trainer.max_epochs)
    tol = next((cb.tol for cb in callbacks if isinstance(cb, EarlyStopping)), 0.0)
    interrupted = False
    for cb in callbacks:
        cb.on_train_begin(state)
    try:
        for _ in range(n_epochs):
            epoch = len(history) + 1
            started = time.perf_counter()
            loss = trainer.train_epoch()
            elapsed = time.perf_counter() - started
            if loss is not None and not math.isfinite(loss):
                raise TrainingDiverged(
                    f"The training loss became {loss} at epoch {epoch} of {name}; try a smaller "
                    "learning_rate or stronger regularisation."
                )
            record = {"epoch": epoch, "loss": loss, "val_loss": trainer.validate(), "lr": trainer.learning_rate,
                      "time": elapsed}
            history.append(record)
            value = record[monitor]
            state.improved = value is not None and value < state.best_value
            state.progressed = value is not None and value < state.reference - tol
            if state.improved:
                state.best_value, state.best_iteration = value, epoch
            if state.progressed:
                state.reference = value
            for cb in callbacks:
                cb.on_epoch_end(state, record)
            if state.stop:
                break
    except KeyboardInterrupt:
        interrupted = True
        warnings.warn(f"{name}.fit interrupted after {len(history)} epochs; keeping the best model so far "
                      "where validation was monitored, else the model as it is.", RuntimeWarning, stacklevel=3)
    finally:
        for cb in callbacks:
            cb.on_train_end(state)
    best = state.best_value
    return TrainingResult(history=history, n_iter=len(history), best_iteration=state.best_iteration,
                          monitor=monitor, best_score=-best if math.isfinite(best) else None,
                          interrupted=interrupted)
