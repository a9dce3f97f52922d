"""AutoencoderRecommender: the family's configurations, planted structure, paths that must agree.

The closed-form item-item model (EASE, EDLAE, DAN) has its own file, ``test_ease.py``; the
checks here that use :class:`skrec.EASE` compare the gradient-trained layer with it.
"""

import math
import re

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone

from skrec import Popularity
from skrec._torch import device as device_module
from skrec._torch import make_generator
from skrec.autoencoder import AutoencoderModule, AutoencoderRecommender
from skrec.autoencoder import _autoencoder
from skrec.autoencoder._autoencoder import AutoencoderTrainer
from skrec.metrics import ndcg_at_k
from skrec.model_selection import evaluate, holdout_split

from conftest import plain_ease, planted_implicit


@pytest.fixture(scope="module")
def planted():
    X = planted_implicit()
    train, test = X[:240], X[240:]
    hist, held = holdout_split(test, 0.25, random_state=0)
    return train, hist, held


def popularity_ndcg(train, hist, held):
    """NDCG@10 of ranking by the raw training counts (ties by the lower item index)."""
    return evaluate(Popularity(damping=0.0, device="cpu").fit(train), hist, held, "ndcg@10")["ndcg@10"]


CONFIGS = {
    "mult-dae": dict(hidden_layer_sizes=(32, 8), input_dropout=0.5, learning_rate=1e-2, alpha=0.1),
    "mult-vae": dict(hidden_layer_sizes=(32, 8), variational=True, anneal_steps=50, learning_rate=1e-2),
    "recoder": dict(hidden_layer_sizes=(16,), loss="bce", negative_sampling=True, n_shared_negatives=10,
                    learning_rate=1e-2),
    "asysvd": dict(hidden_layer_sizes=(8,), activation="identity", loss="mse", input_dropout=0.0,
                   normalize=False, learning_rate=1e-2),
    "sdense-gradient": dict(hidden_layer_sizes=(), loss="mse", input_dropout=0.0, normalize=False, alpha=5.0,
                            learning_rate=1e-2),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_learns_planted_structure_well_above_popularity(name, planted):
    train, hist, held = planted
    model = AutoencoderRecommender(**CONFIGS[name], max_iter=20, batch_size=64, random_state=0,
                                   device="cpu").fit(train)
    ndcg = evaluate(model, hist, held, "ndcg@10")["ndcg@10"]
    pop = popularity_ndcg(train, hist, held)  # 0.15 here; recovering the blocks gives about 0.5
    assert ndcg > 3 * pop, (ndcg, pop)


def test_history_records_and_step_count(planted):
    train, _, _ = planted
    model = AutoencoderRecommender((8,), max_iter=3, batch_size=64, learning_rate=1e-3, early_stopping=False,
                                   random_state=0, device="cpu").fit(train)
    assert [sorted(h) for h in model.history_] == [sorted(["epoch", "loss", "val_loss", "lr", "time"])] * 3
    assert all(h["val_loss"] is None and h["lr"] == pytest.approx(1e-3) for h in model.history_)
    assert all(math.isfinite(h["loss"]) for h in model.history_)
    assert model.n_iter_ == 3
    assert model.n_steps_ == 3 * math.ceil(train.shape[0] / 64)  # one step per batch
    losses = [h["loss"] for h in model.history_]
    assert model.best_iteration_ == int(np.argmin(losses)) + 1  # no validation: the training loss
    assert model.best_score_ == pytest.approx(-min(losses))


def test_deterministic_under_a_seed_and_seed_matters(planted):
    train, _, _ = planted
    make = lambda seed: AutoencoderRecommender((16, 4), variational=True, max_iter=3, batch_size=64,
                                               random_state=seed, device="cpu").fit(train)
    a, b, c = make(1), make(1), make(2)
    np.testing.assert_array_equal(a.predict(train[:20]), b.predict(train[:20]))
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]
    assert not np.allclose(a.predict(train[:20]), c.predict(train[:20]))


@pytest.mark.parametrize("loss", ["multinomial", "bce", "mse"])
def test_negative_sampling_covering_all_items_equals_the_full_path(loss, planted):
    train, _, _ = planted
    common = dict(hidden_layer_sizes=(12, 6), loss=loss, input_dropout=0.0, max_iter=3,
                  batch_size=train.shape[0], learning_rate=1e-2, alpha=1.0, random_state=0, device="cpu")
    full = AutoencoderRecommender(**common).fit(train)
    sampled = AutoencoderRecommender(**common, negative_sampling=True,
                                     n_shared_negatives=train.shape[1]).fit(train)
    np.testing.assert_allclose([h["loss"] for h in sampled.history_], [h["loss"] for h in full.history_],
                               rtol=1e-5)
    np.testing.assert_allclose(sampled.predict(train[:30]), full.predict(train[:30]), rtol=1e-4, atol=1e-4)


def test_negative_sampling_scores_a_subset_and_the_loss_matches_on_it():
    """With only the batch's items, the loss is the full loss restricted to those columns."""
    module = AutoencoderModule(10, (4,), "tanh")
    module.reset_parameters(torch.Generator().manual_seed(0))
    x = torch.zeros(3, 10)
    x[0, [1, 4]] = 1
    x[1, [4, 7]] = 1
    x[2, 2] = 1
    items = torch.tensor([1, 2, 4, 7])
    full, _, _ = module(x)
    sub, _, _ = module(x[:, items], items=items)
    torch.testing.assert_close(sub, full[:, items])


def test_user_norm_weights_the_gradient_loss_as_the_closed_form_does():
    rng = np.random.default_rng(4)
    X = sp.csr_matrix((rng.random((80, 15)) < rng.uniform(0.1, 0.6, size=(80, 1))).astype(float))
    X = X[np.diff(X.indptr) > 0]
    dan = dict(alpha=0.5, user_norm=1.0, item_norm=0.5, device="cpu")
    exact = plain_ease(**dan).fit(X)
    sgd = AutoencoderRecommender((), loss="mse", early_stopping=False, input_dropout=0.0, normalize=False, **dan, learning_rate=0.05,
                                 batch_size=X.shape[0], max_iter=400, random_state=0).fit(X)
    np.testing.assert_allclose(sgd.predict(X), exact.predict(X), atol=3e-2)
    unweighted = plain_ease(**dict(dan, user_norm=0.0)).fit(X)
    assert np.abs(unweighted.predict(X) - exact.predict(X)).max() > 0.1


def test_normalized_gradient_layer_approaches_ease_with_normalize():
    """normalize=True: both fit the raw rows from their L2-normalised inputs."""
    rng = np.random.default_rng(6)
    X = sp.csr_matrix(rng.integers(1, 4, size=(80, 12)) * (rng.random((80, 12)) < 0.4), dtype=float)
    X = X[np.diff(X.indptr) > 0]
    exact = plain_ease(alpha=0.2, normalize=True, device="cpu").fit(X)
    sgd = AutoencoderRecommender((), loss="mse", early_stopping=False, input_dropout=0.0, normalize=True, alpha=0.2,
                                 learning_rate=0.05, batch_size=X.shape[0], max_iter=400, random_state=0,
                                 mixed_precision=False, device="cpu").fit(X)  # converges to float32 accuracy
    np.testing.assert_allclose(sgd.predict(X), exact.predict(X), atol=2e-2)
    plain = plain_ease(alpha=0.2, device="cpu").fit(X)
    assert np.abs(plain.predict(X) - exact.predict(X)).max() > 0.1


def test_mini_batches_keep_ease_as_the_minimiser():
    """Each batch adds ``alpha / n_rows * Σ S²``: over an epoch of mini-batches the objective
    is EASE's with the same alpha, whatever the batch size."""
    rng = np.random.default_rng(1)
    X = sp.csr_matrix((rng.random((80, 15)) < 0.3).astype(float))
    exact = plain_ease(alpha=3.0, device="cpu").fit(X)
    sgd = AutoencoderRecommender((), loss="mse", early_stopping=False, input_dropout=0.0, normalize=False, alpha=3.0, optimizer="sgd",
                                 learning_rate=0.005, batch_size=20, max_iter=800, random_state=0,
                                 device="cpu").fit(X)
    np.testing.assert_allclose(sgd.predict(X), exact.predict(X), atol=5e-2)


def test_shared_negatives_widen_the_scored_columns(planted):
    """With negative sampling a batch scores the items its rows hold plus ``n_shared_negatives``
    drawn items; every extra column adds a non-negative term, and all of them give the full loss."""
    train, _, _ = planted
    idx = torch.arange(3)  # three rows holding few of the 60 items
    held = int((train[:3].toarray() != 0).any(0).sum())
    assert held < train.shape[1] - 20
    for loss in ("multinomial", "bce", "mse"):
        model = AutoencoderRecommender((12, 6), loss=loss, input_dropout=0.0, max_iter=1, batch_size=64,
                                       random_state=0, device="cpu").fit(train)

        def batch_loss(**params):
            spec = dict(model.get_params(), alpha=0.0, **params)
            trainer = AutoencoderTrainer(model.module_, train, None, make_generator(0, torch.device("cpu")), spec,
                                         64, optimizer="adam", learning_rate=1e-3, batch_size=64)
            with torch.no_grad():
                return float(trainer.loss(idx))

        full = batch_loss(negative_sampling=False)
        own = batch_loss(negative_sampling=True, n_shared_negatives=0)
        some = batch_loss(negative_sampling=True, n_shared_negatives=20)
        every = batch_loss(negative_sampling=True, n_shared_negatives=train.shape[1])
        assert own < some < full, (loss, own, some, full)
        assert every == pytest.approx(full, rel=1e-6)


def test_input_dropout_trains_toward_the_edlae_solution():
    """Corrupting the inputs while training the item-item layer minimises, in expectation,
    what EASE(input_dropout=p) minimises exactly (Steck, 2020): the gradient model ends far
    closer to EDLAE's expected objective than to plain EASE's."""
    rng = np.random.default_rng(2)
    X = sp.csr_matrix((rng.random((60, 10)) < 0.4).astype(float))
    X = X[np.diff(X.indptr) > 0]
    Xd, p, lam = X.toarray(), 0.3, 1.0
    G = Xd.T @ Xd

    def expected_objective(model):
        B = model.module_.item_item.detach().numpy().astype(np.float64)
        np.fill_diagonal(B, 0.0)
        return ((Xd - Xd @ B) ** 2).sum() + (p / (1 - p) * np.diag(G)[:, None] * B ** 2).sum() + lam * (B ** 2).sum()

    edlae = expected_objective(plain_ease(alpha=lam, input_dropout=p, device="cpu").fit(X))
    plain = expected_objective(plain_ease(alpha=lam, device="cpu").fit(X))
    sgd = AutoencoderRecommender((), loss="mse", early_stopping=False, input_dropout=p, normalize=False, alpha=lam, optimizer="sgd",
                                 learning_rate=0.01, batch_size=X.shape[0], max_iter=500, random_state=0,
                                 device="cpu").fit(X)
    assert edlae <= expected_objective(sgd) < edlae + 0.2 * (plain - edlae)


def test_asysvd_is_linear_x_v1_v2():
    rng = np.random.default_rng(3)
    X = sp.csr_matrix((rng.random((30, 12)) < 0.3).astype(float))
    m = AutoencoderRecommender((4,), activation="identity", loss="mse", input_dropout=0.0, normalize=False,
                               max_iter=2, batch_size=10, random_state=0, device="cpu").fit(X)
    mod = m.module_
    V1, c = mod.enc_weights[0].detach().numpy().T, mod.enc_biases[0].detach().numpy()
    V2, b = mod.dec_weights[0].detach().numpy().T, mod.dec_biases[0].detach().numpy()
    np.testing.assert_allclose(m.predict(X), (X.toarray() @ V1 + c) @ V2 + b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m.transform(X), X.toarray() @ V1 + c, rtol=1e-4, atol=1e-5)


def test_tied_decoder_shares_the_encoder_weights():
    m = AutoencoderRecommender((6, 3), tied=True, variational=True, max_iter=1, batch_size=8,
                               random_state=0, device="cpu").fit(planted_implicit(40, 12, per_user=2))
    names = [n for n, _ in m.module_.named_parameters()]
    assert not any(n.startswith("dec_weights") for n in names)
    assert m.transform(planted_implicit(5, 12, per_user=2, seed=1)).shape == (5, 3)


def test_transform_is_the_code_and_absent_for_the_item_item_layer(planted):
    train, _, _ = planted
    dae = AutoencoderRecommender((16, 5), max_iter=1, random_state=0, device="cpu").fit(train)
    assert dae.transform(train[:7]).shape == (7, 5)
    sdense = AutoencoderRecommender((), loss="mse", max_iter=1, random_state=0, device="cpu").fit(train)
    assert not hasattr(sdense, "transform")


def test_fold_in_of_new_users_needs_no_refit(planted):
    train, hist, held = planted
    model = AutoencoderRecommender((32, 8), max_iter=30, batch_size=64, learning_rate=1e-2, random_state=0,
                                   device="cpu").fit(train)
    before = model.predict(hist)
    ids, _ = model.recommend(hist, k=5)
    assert model.n_users_ == train.shape[0]  # unseen rows were scored without touching the model
    np.testing.assert_array_equal(model.predict(hist), before)
    assert ids.shape == (hist.shape[0], 5)


def test_early_stopping_monitors_validation_rows_and_restores_the_best(planted):
    train, _, _ = planted
    model = AutoencoderRecommender((16, 4), early_stopping=True, validation_fraction=0.2, n_iter_no_change=3,
                                   max_iter=60, batch_size=32, learning_rate=5e-2, random_state=0,
                                   device="cpu").fit(train)
    vals = [h["val_loss"] for h in model.history_]
    assert all(-1.0 <= v <= 0.0 for v in vals)  # minus an NDCG
    assert model.best_iteration_ == int(np.argmin(vals)) + 1
    assert model.best_score_ == pytest.approx(-min(vals))
    assert model.n_iter_ < 60 and model.n_iter_ == model.best_iteration_ + 3  # 3 epochs without improvement


def test_early_stopping_trains_only_on_the_rows_outside_validation(planted):
    train, _, _ = planted
    model = AutoencoderRecommender((8,), early_stopping=True, validation_fraction=0.25, max_iter=2, batch_size=64,
                                   random_state=0, device="cpu").fit(train)
    n_train = train.shape[0] - round(0.25 * train.shape[0])  # 180 rows: 3 batches an epoch, not 4
    assert model.n_steps_ == model.n_iter_ * math.ceil(n_train / 64)
    assert model.n_users_ == train.shape[0]


def test_history_val_loss_is_minus_the_ndcg_at_100_of_the_held_out_rows(planted):
    """The monitored value of the restored epoch equals skrec's NDCG@100 of the same split."""
    train, _, _ = planted
    model = AutoencoderRecommender((16, 4), max_iter=3, early_stopping=True, learning_rate=1e-2, batch_size=32,
                                   random_state=0, device="cpu").fit(train)
    # The held-out rows are drawn inside fit and nothing public exposes them: ask the
    # estimator's split hook for the same rows (the split of the fit's seed).
    _, (hist, held) = model._validation_split(train, model._seed)
    assert hist.shape[0] == round(0.1 * train.shape[0])
    ids, _ = model.recommend(hist, k=min(100, train.shape[1]))
    monitored = model.history_[model.best_iteration_ - 1]["val_loss"]  # the epoch fit restored
    assert monitored == pytest.approx(-ndcg_at_k(held, ids, k=ids.shape[1]), abs=1e-5)


def test_a_warm_fit_validates_on_the_same_rows(planted):
    """Continuing training keeps the first fit's validation rows (new ones would have been
    trained on): the continued epoch's val_loss is measured on the first fit's split."""
    train, _, _ = planted
    model = AutoencoderRecommender((16, 4), max_iter=1, early_stopping=True, learning_rate=1e-2, batch_size=32,
                                   warm_start=True, random_state=0, device="cpu").fit(train)
    _, (hist, held) = model._validation_split(train, model._seed)  # drawn in fit; nothing public has them
    model.fit(train)
    assert model.n_iter_ == 2 and model.best_iteration_ == 2  # the continued epoch improved
    ids, _ = model.recommend(hist, k=min(100, train.shape[1]))
    assert model.history_[1]["val_loss"] == pytest.approx(-ndcg_at_k(held, ids, k=ids.shape[1]), abs=1e-5)


@pytest.mark.parametrize("params", [
    dict(hidden_layer_sizes=(16, 4)),
    dict(hidden_layer_sizes=(), loss="mse", input_dropout=0.0, normalize=False, item_norm=0.5, alpha=2.0),
], ids=["dae", "sdense-item-norm"])
def test_trainer_validation_is_the_ndcg_of_the_held_out_rows_in_any_batching(params, planted):
    """``AutoencoderTrainer.validation_loss`` over several row batches equals minus
    ``skrec.metrics.ndcg_at_k`` @100 of the fitted model's recommendations (history excluded)."""
    train, hist, held = planted
    model = AutoencoderRecommender(**params, max_iter=2, batch_size=64, learning_rate=1e-2, early_stopping=False,
                                   random_state=0, device="cpu").fit(train)
    ids, _ = model.recommend(hist, k=min(100, train.shape[1]))
    expected = -ndcg_at_k(held, ids, k=ids.shape[1])
    for rows_per_batch in (7, hist.shape[0]):  # several chunks, then one
        trainer = AutoencoderTrainer(model.module_, train, (hist, held), make_generator(0, torch.device("cpu")),
                                     model.get_params(), rows_per_batch, optimizer="adam", learning_rate=1e-3,
                                     batch_size=64)
        assert trainer.has_validation
        assert trainer.validate() == pytest.approx(expected, abs=1e-5)


def test_warm_start_continues_and_checkpoints_resume(planted, tmp_path):
    import joblib

    train, _, _ = planted
    params = dict(hidden_layer_sizes=(16, 4), variational=True, anneal_steps=10, max_iter=2, batch_size=64,
                  random_state=0, device="cpu")
    model = AutoencoderRecommender(**params, warm_start=True, checkpoint_every=2,
                                   checkpoint_path=str(tmp_path / "ae_{epoch}.joblib")).fit(train)
    steps = model.n_steps_
    assert steps == 2 * math.ceil(train.shape[0] / 64)
    first = model.predict(train[:5])
    model.fit(train)
    assert model.n_iter_ == 4 and [h["epoch"] for h in model.history_] == [1, 2, 3, 4]
    assert model.n_steps_ == 2 * steps  # KL annealing continues
    assert not np.allclose(model.predict(train[:5]), first)
    resumed = joblib.load(tmp_path / "ae_2.joblib").set_params(checkpoint_every=0)
    np.testing.assert_array_equal(resumed.predict(train[:5]), first)  # the model after epoch 2
    assert resumed.n_steps_ == steps
    resumed.fit(train)  # continues (the optimizer state is rebuilt: pickles drop it)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4] and resumed.n_steps_ == 2 * steps
    with pytest.raises(ValueError, match="warm_start must be False when the architecture changes"):
        model.set_params(hidden_layer_sizes=(8, 4)).fit(train)


def test_kl_weight_grows_with_the_steps_taken(planted):
    """The batch loss adds ``min(beta, n_steps / anneal_steps)`` times the mean KL term, with
    ``n_steps`` counted from the trainer's start (a warm fit passes the steps already taken)."""
    from skrec.losses import kl_divergence

    train, _, _ = planted
    model = AutoencoderRecommender((8, 4), variational=True, input_dropout=0.0, normalize=False, beta=0.3,
                                   anneal_steps=10, alpha=0.0, max_iter=1, batch_size=64, random_state=0,
                                   mixed_precision=False, device="cpu").fit(train)  # compared in float32 below
    idx = torch.arange(40)
    x = torch.as_tensor(train[:40].toarray(), dtype=torch.float32)
    with torch.no_grad():
        mu, logvar = model.module_.encode(x)
        kl = float(kl_divergence(mu, logvar).mean())
    assert kl > 1e-3

    def batch_loss(n_steps):
        trainer = AutoencoderTrainer(model.module_, train, None, make_generator(5, torch.device("cpu")),
                                     model.get_params(), 64, optimizer="adam", learning_rate=1e-3,
                                     batch_size=64, n_steps=n_steps)
        with torch.no_grad():
            return float(trainer.loss(idx))  # same generator seed: the same VAE noise

    base = batch_loss(0)
    for n_steps in (2, 7, 100):  # weights 0.2, then beta = 0.3 (the cap) twice
        weight = min(0.3, n_steps / 10)
        assert batch_loss(n_steps) - base == pytest.approx(weight * kl, rel=1e-4, abs=1e-5)


def test_dense_and_csr_training_data_give_the_same_model(planted, monkeypatch):
    train, _, _ = planted
    params = dict(hidden_layer_sizes=(8,), max_iter=2, batch_size=50, random_state=0, device="cpu")
    dense = AutoencoderRecommender(**params).fit(train)
    # DENSE_LIMIT is the module constant that picks the path; no parameter exposes it
    monkeypatch.setattr(_autoencoder, "DENSE_LIMIT", 0)
    trainer = AutoencoderTrainer(dense.module_, train, None, make_generator(0, torch.device("cpu")),
                                 dense.get_params(), 64, optimizer="adam", learning_rate=1e-3, batch_size=50)
    assert trainer.dense is None  # the batches are gathered from the device CSR
    sparse_path = AutoencoderRecommender(**params).fit(train)
    np.testing.assert_allclose(sparse_path.predict(train[:10]), dense.predict(train[:10]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("params, match", [
    (dict(loss="bpr"), "loss must be one of 'multinomial', 'bce', 'mse'; got 'bpr'."),
    (dict(loss="logistic"), "loss must be one of 'multinomial', 'bce', 'mse'; got 'logistic'."),
    (dict(input_dropout=1.0), "input_dropout must be a float >= 0 and < 1; got 1.0."),
    (dict(hidden_layer_sizes=(8, 0)), "hidden_layer_sizes must be a tuple of positive ints"),
    (dict(activation="gelu"), "activation must be one of"),
    (dict(n_shared_negatives=-1), "n_shared_negatives must be an int >= 0; got -1."),
    (dict(optimizer="closed_form"), "optimizer must be one of 'adam', 'adamw', 'adagrad', 'sgd'; got"),
    (dict(optimizer="sparse_adam"), "optimizer must be one of 'adam', 'adamw', 'adagrad', 'sgd'; got"),
    (dict(item_norm=0.5), "item_norm must be 0 unless hidden_layer_sizes=()"),
    (dict(user_norm=-1.0), "user_norm must be a float >= 0; got -1.0."),
])
def test_bad_parameters_are_named(params, match, planted):
    train, _, _ = planted
    with pytest.raises((ValueError, TypeError), match="^" + re.escape(match)):
        AutoencoderRecommender(**params).fit(train)


@pytest.mark.parametrize("old", ["dropout", "solver", "n_negatives"])
def test_renamed_parameters_are_gone(old):
    assert old not in AutoencoderRecommender().get_params()
    with pytest.raises(TypeError):
        AutoencoderRecommender(**{old: 0})


def test_validation_fraction_must_leave_rows_on_both_sides():
    X = planted_implicit(5, 12, per_user=2)
    model = AutoencoderRecommender((4,), early_stopping=True, validation_fraction=0.05, device="cpu")
    with pytest.raises(ValueError, match="validation_fraction must be a fraction that leaves rows"):
        model.fit(X)
    assert not hasattr(model, "n_items_")  # a failed fit leaves nothing fitted behind


@pytest.mark.cuda
def test_cpu_and_cuda_agree_on_a_forward_pass(planted):
    train, hist, _ = planted
    dae = AutoencoderRecommender((16, 4), max_iter=2, random_state=0, device="cuda").fit(train)
    moved = clone(dae)
    moved.__setstate__(dict(dae.__getstate__(), device_="cpu"))
    np.testing.assert_allclose(moved.predict(hist), dae.predict(hist), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n_users, n_items", [(300, 600), (2000, 400)])
def test_the_item_item_budget_bounds_the_measured_peak(n_users, n_items):
    """Training the n_items² layer by gradient allocates at most what its check budgets
    (measured with the profiler on the CPU, early stopping's best-epoch copy included)."""
    from torch.profiler import ProfilerActivity, profile

    from skrec.autoencoder._autoencoder import item_item_bytes

    X = sp.random(n_users, n_items, density=0.05, format="csr", random_state=0)
    X.data[:] = 1.0
    model = AutoencoderRecommender((), loss="mse", max_iter=3, early_stopping=True, device="cpu", random_state=0)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model.fit(X)
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    assert peak <= item_item_bytes(n_users, n_items, model.batch_size) <= 1.5 * peak


def test_the_item_item_layer_refuses_when_the_device_lacks_memory(monkeypatch):
    from skrec.autoencoder import _autoencoder

    X = sp.random(50, 40, density=0.2, format="csr", random_state=0)
    X.data[:] = 1.0
    need = _autoencoder.item_item_bytes(50, 40, AutoencoderRecommender().batch_size)
    monkeypatch.setattr(device_module, "free_memory", lambda device: need - 1)
    model = AutoencoderRecommender((), loss="mse", max_iter=1, device="cpu")
    with pytest.raises(ValueError, match=r"^X must be at most the items whose 40x40 layer trains on cpu .*use "
                                         r"EASE for its closed form, or hidden layers; got 40 items\.$"):
        model.fit(X)
    assert not hasattr(model, "n_items_")
    AutoencoderRecommender((8,), max_iter=1, device="cpu").fit(X)  # hidden layers: no n² matrix, no check
    monkeypatch.setattr(device_module, "free_memory", lambda device: need)
    assert model.fit(X).n_items_ == 40


@pytest.mark.parametrize("native, asked", [(True, True), (True, False), (False, True)])
def test_mixed_precision_autocasts_only_the_training_forward_pass(monkeypatch, planted, native, asked):
    """With bfloat16 instructions (and ``mixed_precision=True``) the training forward pass runs
    its layers in bfloat16; validation and every score stay float32."""
    monkeypatch.setattr(device_module, "cpu_bf16_native", lambda: native)
    train, X_hist, _ = planted
    seen = []

    def hook(module, inputs, output):
        if isinstance(module, AutoencoderModule):
            seen.append((torch.is_grad_enabled(), output[0].dtype))  # the logits

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        model = AutoencoderRecommender((8, 4), max_iter=2, batch_size=64, n_iter_no_change=5, random_state=0,
                                       mixed_precision=asked, device="cpu").fit(train)
        training = {dtype for grad, dtype in seen if grad}
        seen.clear()
        scores = model.predict(X_hist[:5])
    finally:
        handle.remove()
    assert training == {torch.bfloat16 if native and asked else torch.float32}
    assert {dtype for _, dtype in seen} == {torch.float32} and scores.dtype == np.float32
