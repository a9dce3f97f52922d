"""AutoencoderRecommender: the family's configurations, planted structure, paths that must agree."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone

from skrec.autoencoder import AutoencoderModule, AutoencoderRecommender
from skrec.model_selection import evaluate, holdout_split


def planted_implicit(n_users=300, n_items=60, n_groups=4, per_user=8, noise=1, seed=0):
    """Users in groups; each group's positives are drawn from its own item block, plus noise."""
    rng = np.random.default_rng(seed)
    group = rng.integers(n_groups, size=n_users)
    block = n_items // n_groups
    rows, cols = [], []
    for u in range(n_users):
        own = rng.choice(np.arange(group[u] * block, (group[u] + 1) * block), size=per_user, replace=False)
        other = rng.choice(n_items, size=noise, replace=False)
        items = np.unique(np.concatenate([own, other]))
        rows += [u] * items.size
        cols += list(items)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))


@pytest.fixture(scope="module")
def planted():
    X = planted_implicit()
    train, test = X[:240], X[240:]
    hist, held = holdout_split(test, 0.25, random_state=0)
    return train, hist, held


def popularity_ndcg(train, hist, held):
    pop = np.asarray(train.sum(0)).ravel()

    class Pop:
        def recommend(self, X, k=10, exclude_seen=True):
            scores = np.tile(pop.astype(np.float32), (X.shape[0], 1))
            scores[X.nonzero()] = -np.inf
            ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            return ids, np.take_along_axis(scores, ids, 1)

    return evaluate(Pop(), hist, held, "ndcg@10")["ndcg@10"]


CONFIGS = {
    "mult-dae": dict(hidden_layer_sizes=(32, 8), dropout=0.5, learning_rate=1e-2, alpha=0.1),
    "mult-vae": dict(hidden_layer_sizes=(32, 8), variational=True, anneal_steps=50, learning_rate=1e-2),
    "recoder": dict(hidden_layer_sizes=(16,), loss="logistic", negative_sampling=True, n_negatives=10,
                    learning_rate=1e-2),
    "asysvd": dict(hidden_layer_sizes=(8,), activation="identity", loss="mse", dropout=0.0, normalize=False,
                   learning_rate=1e-2),
    "sdense-gradient": dict(hidden_layer_sizes=(), loss="mse", dropout=0.0, normalize=False, alpha=5.0,
                            learning_rate=1e-2),
    "ease": dict(hidden_layer_sizes=(), loss="mse", dropout=0.0, normalize=False, solver="closed_form",
                 alpha=5.0),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_learns_planted_structure_well_above_popularity(name, planted):
    train, hist, held = planted
    model = AutoencoderRecommender(**CONFIGS[name], max_iter=20, batch_size=64, random_state=0,
                                   device="cpu").fit(train)
    ndcg = evaluate(model, hist, held, "ndcg@10")["ndcg@10"]
    pop = popularity_ndcg(train, hist, held)  # 0.15 here; recovering the blocks gives about 0.5
    assert ndcg > 3 * pop, (ndcg, pop)


def test_deterministic_under_a_seed_and_seed_matters(planted):
    train, _, _ = planted
    make = lambda seed: AutoencoderRecommender((16, 4), variational=True, max_iter=3, batch_size=64,
                                               random_state=seed, device="cpu").fit(train)
    a, b, c = make(1), make(1), make(2)
    np.testing.assert_array_equal(a.predict(train[:20]), b.predict(train[:20]))
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]
    assert not np.allclose(a.predict(train[:20]), c.predict(train[:20]))


@pytest.mark.parametrize("loss", ["multinomial", "logistic", "mse"])
def test_negative_sampling_covering_all_items_equals_the_full_path(loss, planted):
    train, _, _ = planted
    common = dict(hidden_layer_sizes=(12, 6), loss=loss, dropout=0.0, max_iter=3,
                  batch_size=train.shape[0], learning_rate=1e-2, alpha=1.0, random_state=0, device="cpu")
    full = AutoencoderRecommender(**common).fit(train)
    sampled = AutoencoderRecommender(**common, negative_sampling=True,
                                     n_negatives=train.shape[1]).fit(train)
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


def test_ease_closed_form_matches_the_formula_and_gradient_training():
    rng = np.random.default_rng(1)
    X = sp.csr_matrix((rng.random((80, 15)) < 0.3).astype(float))
    lam = 3.0
    ease = AutoencoderRecommender((), loss="mse", dropout=0.0, normalize=False, solver="closed_form",
                                  alpha=lam, device="cpu").fit(X)
    G = X.T @ X
    P = np.linalg.inv(G.toarray() + lam * np.eye(15))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(ease.predict(X), X.toarray() @ B, rtol=1e-4, atol=1e-5)
    sgd = AutoencoderRecommender((), loss="mse", dropout=0.0, normalize=False, alpha=lam, learning_rate=0.05,
                                 batch_size=80, max_iter=400, random_state=0, device="cpu").fit(X)
    np.testing.assert_allclose(sgd.predict(X), ease.predict(X), atol=2e-2)
    # the gradient path never reaches a lower objective than the exact minimiser
    def objective(model):
        S = model.module_.item_item.detach().numpy().astype(np.float64)
        np.fill_diagonal(S, 0.0)
        return ((X.toarray() - X.toarray() @ S) ** 2).sum() + lam * (S ** 2).sum()

    assert objective(ease) <= objective(sgd) + 1e-6


def test_closed_form_dropout_is_the_expected_denoising_penalty():
    """Dropout p adds p/(1-p)·diag(G) to the ridge of the closed form (its exact expectation)."""
    rng = np.random.default_rng(2)
    X = sp.csr_matrix((rng.random((60, 10)) < 0.4).astype(float))
    p, lam = 0.3, 1.0
    model = AutoencoderRecommender((), loss="mse", dropout=p, normalize=False, solver="closed_form",
                                   alpha=lam, device="cpu").fit(X)
    G = (X.T @ X).toarray()
    P = np.linalg.inv(G + np.diag(lam + p / (1 - p) * np.diag(G)))
    B = P @ G - P * (np.diag(P @ G) / np.diag(P))[None, :]
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(model.predict(X), X.toarray() @ B, rtol=1e-4, atol=1e-5)


def test_asysvd_is_linear_x_v1_v2():
    rng = np.random.default_rng(3)
    X = sp.csr_matrix((rng.random((30, 12)) < 0.3).astype(float))
    m = AutoencoderRecommender((4,), activation="identity", loss="mse", dropout=0.0, normalize=False,
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
    ease = AutoencoderRecommender((), loss="mse", solver="closed_form", device="cpu").fit(train)
    assert not hasattr(ease, "transform")


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
    assert model.n_iter_ < 60 or model.best_iteration_ is not None


def test_warm_start_continues_and_checkpoints_resume(planted, tmp_path):
    import joblib

    train, _, _ = planted
    params = dict(hidden_layer_sizes=(16, 4), variational=True, anneal_steps=10, max_iter=2, batch_size=64,
                  random_state=0, device="cpu")
    model = AutoencoderRecommender(**params, warm_start=True, checkpoint_every=2,
                                   checkpoint_path=str(tmp_path / "ae_{epoch}.joblib")).fit(train)
    steps = model._n_steps
    first = model.predict(train[:5])
    model.fit(train)
    assert model.n_iter_ == 4 and [h["epoch"] for h in model.history_] == [1, 2, 3, 4]
    assert model._n_steps == 2 * steps  # KL annealing continues
    assert not np.allclose(model.predict(train[:5]), first)
    resumed = joblib.load(tmp_path / "ae_2.joblib").set_params(checkpoint_every=0)
    np.testing.assert_array_equal(resumed.predict(train[:5]), first)  # the model after epoch 2
    resumed.fit(train)  # continues (the optimizer state is rebuilt: pickles drop it)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4] and resumed._n_steps == 2 * steps
    with pytest.raises(ValueError, match="warm_start must be False when the architecture changes"):
        model.set_params(hidden_layer_sizes=(8, 4)).fit(train)


def test_dense_and_csr_training_data_give_the_same_model(planted):
    train, _, _ = planted
    params = dict(hidden_layer_sizes=(8,), max_iter=2, batch_size=50, random_state=0, device="cpu")
    dense = AutoencoderRecommender(**params).fit(train)
    sparse_path = AutoencoderRecommender(**params)
    sparse_path._dense_limit = 0
    sparse_path.fit(train)
    np.testing.assert_allclose(sparse_path.predict(train[:10]), dense.predict(train[:10]), rtol=1e-5, atol=1e-6)


def test_user_and_item_norm_are_dan_on_the_closed_form():
    """user_norm weighs each row's loss by n_u^-b (the Gram becomes Xᵀ diag(w) X); item_norm
    rescales the item-item layer to W_ij = S_ij (c_i / c_j)^a (Park et al., 2025)."""
    rng = np.random.default_rng(3)
    X = sp.csr_matrix((rng.random((70, 12)) < rng.uniform(0.1, 0.7, size=(70, 1))).astype(float))
    X = X[np.diff(X.indptr) > 0]
    p, lam, b, a = 0.4, 0.5, 0.5, 0.3
    model = AutoencoderRecommender((), loss="mse", dropout=p, normalize=False, solver="closed_form", alpha=lam,
                                   user_norm=b, item_norm=a, device="cpu").fit(X)
    w = np.diff(X.indptr) ** -b
    G = (X.T @ sp.diags(w) @ X).toarray()
    P = np.linalg.inv(G + np.diag(lam + p / (1 - p) * np.diag(G)))
    S = P @ G - P * (np.diag(P @ G) / np.diag(P))[None, :]
    np.fill_diagonal(S, 0.0)
    c = np.asarray((X != 0).sum(0)).ravel() ** a
    np.testing.assert_allclose(model.predict(X), X.toarray() @ (c[:, None] * S / c[None, :]), rtol=1e-4, atol=1e-5)
    plain = AutoencoderRecommender((), loss="mse", dropout=p, normalize=False, solver="closed_form", alpha=lam,
                                   device="cpu").fit(X)
    assert np.abs(model.predict(X) - plain.predict(X)).max() > 1e-2  # both options change the model


def test_user_norm_weights_the_gradient_loss_as_the_closed_form_does():
    rng = np.random.default_rng(4)
    X = sp.csr_matrix((rng.random((80, 15)) < rng.uniform(0.1, 0.6, size=(80, 1))).astype(float))
    X = X[np.diff(X.indptr) > 0]
    common = dict(hidden_layer_sizes=(), loss="mse", dropout=0.0, normalize=False, alpha=0.5, user_norm=1.0,
                  item_norm=0.5, device="cpu")
    exact = AutoencoderRecommender(**common, solver="closed_form").fit(X)
    sgd = AutoencoderRecommender(**common, learning_rate=0.05, batch_size=X.shape[0], max_iter=400,
                                 random_state=0).fit(X)
    np.testing.assert_allclose(sgd.predict(X), exact.predict(X), atol=3e-2)
    unweighted = AutoencoderRecommender(**dict(common, user_norm=0.0), solver="closed_form").fit(X)
    assert np.abs(unweighted.predict(X) - exact.predict(X)).max() > 0.1


@pytest.mark.parametrize("params, match", [
    (dict(loss="bpr"), "loss must be one of 'multinomial', 'logistic', 'mse'; got 'bpr'."),
    (dict(dropout=1.0), "dropout must be a float >= 0 and < 1; got 1.0."),
    (dict(hidden_layer_sizes=(8, 0)), "hidden_layer_sizes must be a tuple of positive ints"),
    (dict(activation="gelu"), "activation must be one of"),
    (dict(n_negatives=-1), "n_negatives must be an int >= 0; got -1."),
    (dict(solver="closed_form"), "solver must be a gradient solver"),
    (dict(hidden_layer_sizes=(), loss="multinomial", solver="closed_form"), "solver must be a gradient solver"),
    (dict(item_norm=0.5), "item_norm must be 0 unless hidden_layer_sizes=()"),
    (dict(user_norm=-1.0), "user_norm must be a float >= 0; got -1.0."),
])
def test_bad_parameters_are_named(params, match, planted):
    train, _, _ = planted
    with pytest.raises((ValueError, TypeError), match=match):
        AutoencoderRecommender(**params).fit(train)


def test_closed_form_refuses_when_the_device_lacks_memory(planted, monkeypatch):
    from skrec.autoencoder import _autoencoder

    train, _, _ = planted
    monkeypatch.setattr(_autoencoder, "_free_bytes", lambda device: 1000)
    with pytest.raises(ValueError, match=r"solver must be a gradient solver \('adam', …\) for 60 items"):
        AutoencoderRecommender((), loss="mse", solver="closed_form", device="cpu").fit(train)


def test_validation_fraction_must_leave_rows_on_both_sides():
    X = planted_implicit(5, 12, per_user=2)
    with pytest.raises(ValueError, match="validation_fraction must be a fraction that leaves rows"):
        AutoencoderRecommender((4,), early_stopping=True, validation_fraction=0.05, device="cpu").fit(X)


@pytest.mark.cuda
def test_cpu_and_cuda_agree_on_the_closed_form_and_a_forward_pass(planted):
    train, hist, _ = planted
    params = dict(hidden_layer_sizes=(), loss="mse", solver="closed_form", dropout=0.2, alpha=5.0)
    cpu = AutoencoderRecommender(**params, device="cpu").fit(train)
    gpu = AutoencoderRecommender(**params, device="cuda").fit(train)
    np.testing.assert_allclose(gpu.predict(hist), cpu.predict(hist), rtol=1e-3, atol=1e-4)
    dae = AutoencoderRecommender((16, 4), max_iter=2, random_state=0, device="cuda").fit(train)
    moved = clone(dae)
    moved.__setstate__(dict(dae.__getstate__(), device_="cpu"))
    np.testing.assert_allclose(moved.predict(hist), dae.predict(hist), rtol=1e-4, atol=1e-5)


def test_validation_metric_is_the_ndcg_of_the_held_out_rows(planted):
    """The early-stopping monitor equals skrec's NDCG@100 of the same fold-in split."""
    from skrec.metrics import ndcg_at_k

    train, _, _ = planted
    model = AutoencoderRecommender((16, 4), max_iter=2, early_stopping=True, random_state=0, device="cpu")
    model.fit(train)
    _, val = model._validation_split(train, model._seed)
    model._inference_elements = train.shape[1] * 7  # several chunks
    monitored = float(model._validation_loss(model._training_data(val), None))
    ids, _ = model.recommend(val.hist, k=min(100, train.shape[1]))
    assert monitored == pytest.approx(-ndcg_at_k(val.held, ids, k=ids.shape[1]), abs=1e-5)
