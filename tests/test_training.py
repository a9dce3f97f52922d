"""skrec._torch.training: the epoch protocol, fit_epochs and its callbacks, on toy trainers.

Two small trainers stand in for the models: ``Scripted`` replays given losses (and
validation values) and keeps the number of the epoch its "parameters" come from in a
buffer, so that restores can be read off; ``LeastSquares`` is a real mini-batch
:class:`GradientTrainer` on a linear regression.
"""

import copy
import math
import warnings

import numpy as np
import pytest
import torch

from skrec._torch.training import (
    HISTORY_KEYS,
    Callback,
    Checkpoint,
    EarlyStopping,
    GradientTrainer,
    LRSchedule,
    ProgressBar,
    Trainer,
    TrainingDiverged,
    fit_epochs,
    lr_factor,
    make_optimizer,
)


class Scripted(Trainer):
    """Epoch ``e`` reports ``losses[e - 1]`` (and ``val[e - 1]``); ``module.epoch`` is ``e``."""

    def __init__(self, losses, val=None, *, start=0, interrupt_at=None, max_epochs=None):
        self.module = torch.nn.Module()
        self.module.register_buffer("epoch", torch.tensor(start))
        self.losses, self.val = list(losses), val
        self.has_validation = val is not None
        self.interrupt_at = interrupt_at
        self.max_epochs = max_epochs

    @property
    def at(self):
        return int(self.module.epoch)

    def train_epoch(self):
        epoch = self.at + 1
        if epoch == self.interrupt_at:
            raise KeyboardInterrupt
        self.module.epoch.fill_(epoch)
        return self.losses[epoch - 1]

    def validate(self):
        return None if self.val is None else self.val[self.at - 1]


class LeastSquares(GradientTrainer):
    """``y = x @ w + b`` by mini-batch descent, optionally with a held-out validation set."""

    def __init__(self, *, n=64, batch_size=16, optimizer="adam", learning_rate=0.05, validation=False, seed=0,
                 **options):
        module = torch.nn.Linear(3, 1)
        with torch.no_grad():
            module.weight.zero_()
            module.bias.zero_()
        super().__init__(module, torch.Generator().manual_seed(seed), optimizer=optimizer,
                         learning_rate=learning_rate, batch_size=batch_size, **options)
        data = torch.Generator().manual_seed(1)
        x = torch.randn(n + 32, 3, generator=data)
        y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 + 0.1 * torch.randn(n + 32, generator=data)
        self.x, self.y, self.x_val, self.y_val = x[:n], y[:n], x[n:], y[n:]
        self.n_samples = n
        self.has_validation = validation

    def loss(self, idx):
        return ((self.module(self.x[idx]).squeeze(1) - self.y[idx]) ** 2).mean()

    def validation_loss(self):
        return ((self.module(self.x_val).squeeze(1) - self.y_val) ** 2).mean()


class Recorder(Callback):
    """Remembers which hooks ran."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, state):
        self.calls.append("begin")

    def on_epoch_end(self, state, record):
        self.calls.append(record["epoch"])

    def on_train_end(self, state):
        self.calls.append("end")


# ------------------------------------------------------------------ one history schema
@pytest.mark.parametrize("make, lr_is_float, has_val", [
    (lambda: Scripted([3.0, 2.0, 1.0]), False, False),
    (lambda: Scripted([3.0, 2.0, 1.0], val=[0.3, 0.2, 0.25]), False, True),
    (lambda: LeastSquares(), True, False),
    (lambda: LeastSquares(validation=True), True, True),
])
def test_every_record_has_the_same_keys(make, lr_is_float, has_val):
    result = fit_epochs(make(), 3)
    assert HISTORY_KEYS == ("epoch", "loss", "val_loss", "lr", "time")
    assert [tuple(h) for h in result.history] == [HISTORY_KEYS] * 3
    assert [h["epoch"] for h in result.history] == [1, 2, 3] and result.n_iter == 3
    for h in result.history:
        assert isinstance(h["loss"], float) and math.isfinite(h["loss"])
        assert isinstance(h["val_loss"], float) if has_val else h["val_loss"] is None
        assert isinstance(h["lr"], float) if lr_is_float else h["lr"] is None
        assert isinstance(h["time"], float) and h["time"] >= 0


def test_a_closed_form_solve_runs_once_and_has_no_loss_to_monitor():
    result = fit_epochs(Scripted([None, None], max_epochs=1), max_iter=10)
    assert result.n_iter == 1 and [tuple(h) for h in result.history] == [HISTORY_KEYS]
    assert result.history[0]["loss"] is None and result.history[0]["val_loss"] is None
    assert result.monitor == "loss" and result.best_iteration is None and result.best_score is None


@pytest.mark.parametrize("val", [None, [0.4, 0.1, 0.3, 0.2]])
def test_best_score_is_minus_the_best_monitored_value(val):
    losses = [4.0, 3.0, 2.5, 2.6]
    result = fit_epochs(Scripted(losses, val), 4)
    monitored = losses if val is None else val
    assert result.monitor == ("loss" if val is None else "val_loss")
    assert result.best_score == -min(monitored)
    assert result.best_iteration == int(np.argmin(monitored)) + 1


def test_history_of_earlier_fits_is_continued_not_changed():
    earlier = fit_epochs(Scripted([5.0, 1.0], val=[0.2, 0.1]), 2).history
    frozen = copy.deepcopy(earlier)
    trainer = Scripted([5.0, 1.0, 0.9, 0.8], val=[0.2, 0.1, 0.3, 0.05], start=2)
    result = fit_epochs(trainer, 2, history=earlier)
    assert earlier == frozen, "the caller's history must not be modified"
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4] and result.n_iter == 4
    assert result.history[:2] == frozen
    assert result.best_iteration == 4 and result.best_score == -0.05


def test_an_earlier_best_stays_the_best_and_early_stopping_restores_the_starting_model():
    earlier = fit_epochs(Scripted([1.0, 1.0], val=[0.2, 0.1]), 2).history
    trainer = Scripted([1.0] * 5, val=[0.2, 0.1, 0.3, 0.4, 0.5], start=2)
    result = fit_epochs(trainer, 3, history=earlier, callbacks=[EarlyStopping(5, 0.0)])
    assert result.best_iteration == 2 and result.best_score == -0.1
    assert trainer.at == 2, "no epoch beat the model the warm start began from: it is restored"


def test_a_callback_can_stop_the_loop_and_every_hook_runs():
    class StopAt3(Callback):
        def on_epoch_end(self, state, record):
            state.stop = record["epoch"] == 3

    rec = Recorder()
    result = fit_epochs(Scripted([1.0] * 10), 10, callbacks=[rec, StopAt3()])
    assert result.n_iter == 3 and not result.interrupted
    assert rec.calls == ["begin", 1, 2, 3, "end"]


# ------------------------------------------------------------------ early stopping
def test_early_stopping_restores_the_best_epoch():
    val = [0.9, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    trainer = Scripted([1.0] * 7, val)
    result = fit_epochs(trainer, 7, callbacks=[EarlyStopping(3, 0.0)])
    assert result.n_iter == 5, "three epochs without progress after epoch 2"
    assert result.best_iteration == 2 and result.best_score == -0.5
    assert trainer.at == 2, "the parameters of the best epoch are loaded back"
    kept = Scripted([1.0] * 7, val)
    fit_epochs(kept, 7, callbacks=[EarlyStopping(3, 0.0, restore_best=False)])
    assert kept.at == 5


def test_tol_counts_patience_but_the_best_epoch_is_the_lowest():
    # Epoch 3 beats epoch 2 by less than tol: no progress for patience, but the best epoch.
    val = [0.9, 0.5, 0.48, 0.7, 0.8, 0.9]
    trainer = Scripted([1.0] * 6, val)
    result = fit_epochs(trainer, 6, callbacks=[EarlyStopping(3, tol=0.05)])
    assert result.n_iter == 5
    assert result.best_iteration == 3 and result.best_score == -0.48
    assert trainer.at == 3


def test_patience_measures_progress_since_the_last_progress():
    # Each epoch improves by 0.6 * tol: every second one has progressed by more than tol.
    losses = [1.0 - 0.03 * e for e in range(30)]
    result = fit_epochs(Scripted(losses), 30, callbacks=[EarlyStopping(2, tol=0.05, restore_best=False)])
    assert result.n_iter == 30
    flat = [1.0, 0.99, 0.98, 0.97, 0.5]
    result = fit_epochs(Scripted(flat), 5, callbacks=[EarlyStopping(2, tol=0.05, restore_best=False)])
    assert result.n_iter == 3 and result.best_iteration == 3


def test_early_stopping_on_a_real_gradient_trainer_restores_its_parameters():
    trainer = LeastSquares(validation=True, learning_rate=0.3, n=16, batch_size=4)
    snapshots = {}

    class Keep(Callback):
        def on_epoch_end(self, state, record):
            snapshots[record["epoch"]] = state.trainer.snapshot()

    result = fit_epochs(trainer, 60, callbacks=[Keep(), EarlyStopping(3, 0.0)])
    val = [h["val_loss"] for h in result.history]
    assert result.n_iter < 60 and result.best_iteration < result.n_iter, "the case must stop early"
    assert result.best_iteration == int(np.argmin(val)) + 1
    for name, value in trainer.module.state_dict().items():
        torch.testing.assert_close(value, snapshots[result.best_iteration][name])
    with torch.no_grad():
        assert float(trainer.validation_loss()) == pytest.approx(min(val), rel=1e-6)


# ------------------------------------------------------------------ learning-rate schedules
def test_lr_schedules_shape():
    cos = [lr_factor("cosine", s, 10) for s in range(20)]
    assert cos[0] == 1.0 and cos[10] == 1.0 and min(cos) >= 0.1 and cos[9] < cos[1]
    tri = [lr_factor("triangular", s, 10) for s in range(10)]
    assert tri[0] == pytest.approx(0.1) and max(tri) == 1.0 and tri[5] == 1.0
    assert lr_factor(None, 7, 10) == 1.0


class StepLog(Callback):
    """Records ``(step, learning rate)`` before every optimizer step (after the schedule's hook)."""

    def __init__(self):
        self.seen = []

    def on_train_begin(self, state):
        trainer = state.trainer
        trainer.step_hooks.append(lambda step: self.seen.append((step, trainer.learning_rate)))


@pytest.mark.parametrize("schedule", ["cosine", "triangular"])
@pytest.mark.parametrize("start", [0, 6])
def test_lr_schedule_sets_the_rate_of_every_step(schedule, start):
    trainer = LeastSquares(n=40, batch_size=10, learning_rate=0.2, n_steps=start)  # 4 steps per epoch
    log = StepLog()
    result = fit_epochs(trainer, 3, callbacks=[LRSchedule(schedule, cycle_epochs=2), log])
    expected = [(s, 0.2 * lr_factor(schedule, s, 8)) for s in range(start, start + 12)]
    assert [s for s, _ in log.seen] == [s for s, _ in expected], "the schedule continues from n_steps"
    np.testing.assert_allclose([lr for _, lr in log.seen], [lr for _, lr in expected], rtol=1e-12)
    assert trainer.n_steps == start + 12
    assert [h["lr"] for h in result.history] == pytest.approx([lr for _, lr in expected[3::4]])


def test_without_a_schedule_the_rate_is_constant():
    result = fit_epochs(LeastSquares(learning_rate=0.07), 3)
    assert [h["lr"] for h in result.history] == [0.07] * 3


# ------------------------------------------------------------------ checkpoints
def test_checkpoint_is_called_every_n_epochs_with_the_loop_state():
    saved = []
    fit_epochs(Scripted([3.0, 2.0, 1.0, 0.5, 0.4]), 5,
               callbacks=[Checkpoint(2, lambda epoch, state: saved.append((epoch, len(state.history),
                                                                          state.trainer.at)))])
    assert saved == [(2, 2, 2), (4, 4, 4)]


def test_a_checkpoint_resumes_training_with_the_optimizer_state():
    # Full-batch Adam: an epoch is deterministic, so resuming must reproduce the uninterrupted run.
    def make(**kw):
        return LeastSquares(n=64, batch_size=64, learning_rate=0.1, **kw)

    straight = make()
    reference = fit_epochs(straight, 6)

    saved = {}

    def save(epoch, state):
        t = state.trainer
        saved.update(module=t.snapshot(), optimizer=copy.deepcopy(t.optimizer_state()), n_steps=t.n_steps,
                     history=copy.deepcopy(state.history))

    first = make()
    fit_epochs(first, 3, callbacks=[Checkpoint(3, save)])
    assert saved["n_steps"] == 3 and saved["optimizer"]["state"], "Adam's moments are in the checkpoint"

    resumed = make(optimizer_state=saved["optimizer"], n_steps=saved["n_steps"])
    resumed.restore(saved["module"])
    result = fit_epochs(resumed, 3, history=saved["history"])
    assert [h["epoch"] for h in result.history] == list(range(1, 7))
    np.testing.assert_allclose([h["loss"] for h in result.history], [h["loss"] for h in reference.history],
                               rtol=1e-5)
    for name, value in straight.module.state_dict().items():
        torch.testing.assert_close(resumed.module.state_dict()[name], value, rtol=1e-5, atol=1e-6)

    fresh = make(n_steps=saved["n_steps"])  # the same parameters, a fresh optimizer: another path
    fresh.restore(saved["module"])
    fit_epochs(fresh, 3, history=saved["history"])
    assert not torch.allclose(fresh.module.weight, straight.module.weight, rtol=1e-4, atol=1e-5)


def test_a_loaded_optimizer_state_gets_the_learning_rate_of_the_new_fit():
    trainer = LeastSquares(learning_rate=0.2)
    fit_epochs(trainer, 2, callbacks=[LRSchedule("cosine", 1)])
    state = copy.deepcopy(trainer.optimizer_state())
    assert state["param_groups"][0]["lr"] != 0.5
    assert LeastSquares(learning_rate=0.5, optimizer_state=state).learning_rate == 0.5


# ------------------------------------------------------------------ Ctrl-C and divergence
def test_ctrl_c_ends_the_loop_keeps_the_best_model_and_runs_every_callback():
    trainer = Scripted([1.0] * 10, val=[0.9, 0.5, 0.7, 0.8, 0.6, 0.4], interrupt_at=5)
    rec = Recorder()
    with pytest.warns(RuntimeWarning, match="interrupted after 4 epochs"):
        result = fit_epochs(trainer, 10, callbacks=[EarlyStopping(10, 0.0), rec])
    assert result.interrupted and result.n_iter == 4
    assert result.best_iteration == 2 and trainer.at == 2, "the best epoch is restored after Ctrl-C"
    assert rec.calls == ["begin", 1, 2, 3, 4, "end"]


def test_ctrl_c_without_validation_keeps_the_model_as_it_is():
    trainer = Scripted([3.0, 2.0, 1.0, 2.0], interrupt_at=4)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        result = fit_epochs(trainer, 10, callbacks=[EarlyStopping(10, 0.0, restore_best=False)])
    assert result.interrupted and result.n_iter == 3 and trainer.at == 3


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_loss_raises_training_diverged(bad):
    rec = Recorder()
    with pytest.raises(TrainingDiverged, match=rf"became {bad} at epoch 3 of Toy; try a smaller learning_rate"):
        fit_epochs(Scripted([2.0, 1.0, bad, 0.5]), 4, callbacks=[rec], name="Toy")
    assert issubclass(TrainingDiverged, FloatingPointError)
    assert rec.calls == ["begin", 1, 2, "end"]


def test_a_diverging_gradient_trainer_is_caught():
    with pytest.raises(TrainingDiverged):
        fit_epochs(LeastSquares(optimizer="sgd", learning_rate=1e6), 5)


# ------------------------------------------------------------------ gradient trainer parts
def test_validation_draws_the_same_samples_every_pass_and_leaves_training_draws_alone():
    class Noisy(LeastSquares):
        validation_samples = 8

        def validation_loss(self):
            return GradientTrainer.validation_loss(self)

        def validation_batch_loss(self, idx, generator):
            return torch.rand(idx.shape[0], generator=generator).mean()

    trainer = Noisy(validation=True, validation_seed=11)
    before = trainer.generator.get_state()
    first, second = trainer.validate(), trainer.validate()
    assert first == second
    assert torch.equal(trainer.generator.get_state(), before)
    assert Noisy(validation=True, validation_seed=12).validate() != first


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                       ("adagrad", torch.optim.Adagrad), ("sgd", torch.optim.SGD),
                                       ("sparse_adam", torch.optim.SparseAdam)])
def test_make_optimizer(name, cls):
    opt = make_optimizer(name, [torch.nn.Parameter(torch.zeros(2))], 0.3)
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.3


@pytest.mark.parametrize("optimizer, learning_rate", [("adam", 0.05), ("adamw", 0.05), ("adagrad", 0.3),
                                                     ("sgd", 0.05)])
def test_every_optimizer_fits_least_squares(optimizer, learning_rate):
    result = fit_epochs(LeastSquares(optimizer=optimizer, learning_rate=learning_rate), 40)
    assert result.history[-1]["loss"] < 0.1 * result.history[0]["loss"]


def test_progress_bar_reports_the_epochs(capsys):
    fit_epochs(Scripted([2.0, 1.0]), 2, callbacks=[ProgressBar("Toy", total=2)])
    err = capsys.readouterr().err
    assert "Toy" in err and "loss" in err


def test_no_warning_in_a_plain_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_epochs(LeastSquares(validation=True), 3, callbacks=[EarlyStopping(2, 0.0), LRSchedule("cosine", 1)])
