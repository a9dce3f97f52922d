"""The one place for the benchmark suite's hyper-parameters: the grids and the choices.

``GRIDS[protocol][model]`` is what ``python -m benchmarks tune --dataset D --protocol P``
searches with ``GridSearchCV`` on validation data only (P1: 10 % of the training ratings of
the first fold; P2: the validation users; P3: each user's second-to-last item; P4: 20 % of
each user's training part) — never on the test targets. ``PARAMS[dataset][protocol][model]``
holds the configuration the suite runs; each block says the command that chose it.
Settings that are not searched (epochs left to early stopping on a slice of the training
data, batch sizes) are in ``FIXED``.
"""

from __future__ import annotations

__all__ = ["FIXED", "GRIDS", "PARAMS"]

# Constructor arguments every run of a model gets, whatever the dataset.
FIXED = {
    "MFRegressor": dict(learning_rate=0.005, batch_size=1024, max_iter=200, early_stopping=True,
                        n_iter_no_change=5),
    "BPRRanker": dict(max_iter=60, early_stopping=True, validation_fraction=0.1, n_iter_no_change=5),
    "AutoencoderRecommender (Mult-DAE)": dict(hidden_layer_sizes=(600, 200), learning_rate=2e-3,
                                              batch_size=250, max_iter=200, early_stopping=True,
                                              n_iter_no_change=10),
    "AutoencoderRecommender (EASE+dropout)": dict(hidden_layer_sizes=(), loss="mse", normalize=False,
                                                  solver="closed_form"),
    "SequenceTransformer": dict(n_factors=64, n_layers=2, learning_rate=1e-3, batch_size=128,
                                max_iter=200, early_stopping=True, n_iter_no_change=10),
    "implicit ALS": dict(iterations=15),
    "implicit BPR": dict(iterations=100),
}

GRIDS = {
    "P1": {
        "BaselineBiases": {"alpha": [(2.0, 1.0), (5.0, 2.0), (8.0, 3.0)], "regularization": ["l2", "variance"]},
        "MFRegressor": {"n_factors": [64, 128], "alpha": [0.1, 0.12, 0.15]},
        "Surprise BaselineOnly": {"params": [None]},
        "Surprise SVD": {"params": [{"reg_all": 0.02}, {"reg_all": 0.05}, {"reg_all": 0.1}]},
        "Surprise SVD++": {"params": [{"reg_all": 0.02}, {"reg_all": 0.05}]},
    },
    "P2": {
        "Popularity": {},
        "EASE": {"lam": [50.0, 100.0, 200.0, 400.0, 800.0]},
        "BPRRanker": {"n_factors": [128, 256, 512], "alpha": [0.002, 0.005, 0.01]},
        "AutoencoderRecommender (Mult-DAE)": {"dropout": [0.5], "alpha": [0.0, 0.01, 0.05]},
        "AutoencoderRecommender (EASE+dropout)": {"alpha": [100.0, 200.0, 400.0, 800.0], "dropout": [0.0, 0.25, 0.5]},
        "implicit ALS": {"factors": [16, 32, 64], "regularization": [1.0, 10.0, 30.0], "alpha": [5.0, 20.0]},
        "implicit BPR": {"factors": [128, 256], "learning_rate": [0.002, 0.005, 0.01], "regularization": [0.01]},
    },
}
GRIDS["P3"] = {"SequenceTransformer": {"max_seq_len": [50, 200], "dropout": [0.2, 0.5]}, **GRIDS["P2"]}
GRIDS["P4"] = dict(GRIDS["P2"])

# Chosen configurations (see each block's command). Missing entries run the constructor's
# defaults plus FIXED.
PARAMS = {
    # python -m benchmarks tune --dataset ml100k --protocol P1|P2|P3|P4
    "ml100k": {
        "P1": {},
        "P2": {},
        "P3": {},
        "P4": {},
    },
    # Per-model benchmarks on ML-1M (validation users only; see benchmarks/results/*):
    # python -m benchmarks.quality_autoencoder, python -m benchmarks.quality_bpr
    "ml1m": {
        "P2": {},
        "P3": {},
        "P4": {},
    },
    # python -m benchmarks.quality_sequence: the plain SASRec reference's settings (issue 6)
    "beauty": {
        "P3": {"SequenceTransformer": {"max_seq_len": 50, "dropout": 0.5}},
    },
    # python -m benchmarks tune --dataset synthetic --protocol P1|P2|P3|P4
    "synthetic": {"P1": {}, "P2": {}, "P3": {}, "P4": {}},
}
