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
    # The sampled BPR loss is too noisy to stop on (benchmarks/results/bpr_quality.md): a fixed
    # number of epochs.
    "BPRRanker": dict(max_iter=80, early_stopping=False, tol=0.0, n_iter_no_change=100),
    "AutoencoderRecommender (Mult-DAE)": dict(hidden_layer_sizes=(600, 200), learning_rate=2e-3,
                                              batch_size=250, max_iter=200, early_stopping=True,
                                              n_iter_no_change=10),
    "AutoencoderRecommender (EDLAE+DAN)": dict(hidden_layer_sizes=(), loss="mse", normalize=False,
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
        "BPRRanker": {"n_factors": [128, 256], "alpha": [0.005, 0.01], "n_negatives": [1, 8]},
        "AutoencoderRecommender (Mult-DAE)": {"dropout": [0.5], "alpha": [0.0, 0.01, 0.05]},
        # user_norm shrinks the Gram matrix (rows weighted by n_u ** -user_norm), so the ridge
        # grid reaches down an order of magnitude below EASE's.
        "AutoencoderRecommender (EDLAE+DAN)": {"alpha": [2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0],
                                               "dropout": [0.0, 0.25, 0.5], "user_norm": [0.0, 0.5],
                                               "item_norm": [0.0, 0.2]},
        "implicit ALS": {"factors": [16, 32, 64], "regularization": [1.0, 10.0, 30.0, 100.0], "alpha": [5.0, 20.0]},
        "implicit BPR": {"factors": [128, 256], "learning_rate": [0.002, 0.005, 0.01], "regularization": [0.01]},
    },
}
GRIDS["P3"] = {"SequenceTransformer": {"max_seq_len": [50, 200], "dropout": [0.2, 0.5]}, **GRIDS["P2"]}
GRIDS["P4"] = dict(GRIDS["P2"])

# Chosen configurations (see each block's command). Missing entries run the constructor's
# defaults plus FIXED.
PARAMS = {
    # python -m benchmarks tune --dataset ml100k --protocol P1|P2|P3|P4 (CPU, 2026-11-23; EDLAE+DAN
    # searched again on 2026-11-29); the validation score of each choice is in the comment.
    # Logs: benchmarks/results/tune_ml100k.md
    "ml100k": {
        "P1": {
            "BaselineBiases": {"alpha": (5.0, 2.0), "regularization": "variance"},  # RMSE 0.9392
            "MFRegressor": {"alpha": 0.12, "n_factors": 64},  # RMSE 0.9198
            "Surprise BaselineOnly": {"params": None},  # RMSE 0.9450
            "Surprise SVD": {"params": {"reg_all": 0.05}},  # RMSE 0.9363
            "Surprise SVD++": {"params": {"reg_all": 0.02}},  # RMSE 0.9228
        },
        "P2": {  # NDCG@100 of the validation users
            "EASE": {"lam": 400.0},  # 0.4926
            "BPRRanker": {"alpha": 0.005, "n_factors": 128, "n_negatives": 8},  # 0.4791
            "AutoencoderRecommender (Mult-DAE)": {"alpha": 0.01, "dropout": 0.5},  # 0.4802
            "AutoencoderRecommender (EDLAE+DAN)": {"alpha": 50.0, "dropout": 0.25, "item_norm": 0.2,
                                                   "user_norm": 0.5},  # 0.4985
            "implicit ALS": {"alpha": 5.0, "factors": 64, "regularization": 30.0},  # 0.4972
            "implicit BPR": {"factors": 128, "learning_rate": 0.005, "regularization": 0.01},  # 0.4763
        },
        "P3": {  # NDCG@10 of the second-to-last items
            "SequenceTransformer": {"dropout": 0.5, "max_seq_len": 200},  # 0.0967
            "EASE": {"lam": 100.0},  # 0.0712
            "BPRRanker": {"alpha": 0.005, "n_factors": 128, "n_negatives": 8},  # 0.0627
            "AutoencoderRecommender (Mult-DAE)": {"alpha": 0.0, "dropout": 0.5},  # 0.0682
            "AutoencoderRecommender (EDLAE+DAN)": {"alpha": 5.0, "dropout": 0.0, "item_norm": 0.0,
                                                   "user_norm": 0.5},  # 0.0748
            "implicit ALS": {"alpha": 5.0, "factors": 64, "regularization": 1.0},  # 0.0752
            "implicit BPR": {"factors": 128, "learning_rate": 0.01, "regularization": 0.01},  # 0.0490
        },
        "P4": {  # NDCG@20 of 20 % of each user's training part
            "EASE": {"lam": 400.0},  # 0.2543
            "BPRRanker": {"alpha": 0.01, "n_factors": 128, "n_negatives": 8},  # 0.2505
            "AutoencoderRecommender (Mult-DAE)": {"alpha": 0.05, "dropout": 0.5},  # 0.2359
            "AutoencoderRecommender (EDLAE+DAN)": {"alpha": 25.0, "dropout": 0.5, "item_norm": 0.0,
                                                   "user_norm": 0.5},  # 0.2588
            "implicit ALS": {"alpha": 5.0, "factors": 32, "regularization": 30.0},  # 0.2605
            "implicit BPR": {"factors": 128, "learning_rate": 0.005, "regularization": 0.01},  # 0.1927
        },
    },
    # From the per-model studies on the same P2 split (validation users only):
    # python -m benchmarks.quality_autoencoder (benchmarks/results/autoencoder_quality.md) and
    # python -m benchmarks.quality_bpr (bpr_quality.md); P3: the plain SASRec reference's
    # settings of issue 6 (python -m benchmarks.quality_sequence). P4 and the peers on ML-1M
    # are not searched yet: they run FIXED and the constructors' defaults.
    "ml1m": {
        "P2": {
            "EASE": {"lam": 800.0},
            "BPRRanker": {"alpha": 0.005, "n_factors": 128, "n_negatives": 8},
            "AutoencoderRecommender (Mult-DAE)": {"alpha": 0.0, "dropout": 0.5},
            # alpha 250 on the unweighted Gram's scale (autoencoder_quality.md, DAN section)
            "AutoencoderRecommender (EDLAE+DAN)": {"alpha": 22.85, "dropout": 0.5, "user_norm": 0.5,
                                                   "item_norm": 0.2},
        },
        "P3": {"SequenceTransformer": {"max_seq_len": 200, "dropout": 0.2}},
        "P4": {},
    },
    "beauty": {
        "P3": {"SequenceTransformer": {"max_seq_len": 50, "dropout": 0.6}},  # 0.6 > 0.5 on validation
    },
    # The synthetic sets are for smoke runs: FIXED and the constructors' defaults.
    "synthetic": {"P1": {}, "P2": {}, "P3": {}, "P4": {}},
}
