"""The one place for the benchmark suite's hyper-parameters: the grids and the choices.

``GRIDS[protocol][model]`` is what ``python -m benchmarks tune --dataset D --protocol P``
searches with ``GridSearchCV`` on validation data only (P1: 10 % of the training ratings of
the first fold; P2: the validation users; P3: each user's second-to-last item; P4: 20 % of
each user's training part) — never on the test targets. ``PARAMS[dataset][protocol][model]``
holds the configuration the suite runs; each block says the command that chose it.
Settings that are not searched (epochs left to early stopping on a slice of the training
data, batch sizes) are in ``FIXED``.

``STUDIES[name]`` are the per-model studies that ``python -m benchmarks study NAME`` runs
(:mod:`benchmarks.studies`): each names its dataset and protocols and, per entry, the model
(a :data:`benchmarks.suite.CATALOGUE` name), its fixed constructor arguments, the grid
searched on validation data (``None``: a fixed configuration, not searched) and any epoch
policy. They are plain data; :func:`benchmarks.studies.resolve` checks them.
"""

from __future__ import annotations

__all__ = ["FIXED", "GRIDS", "PARAMS", "STUDIES"]

# Constructor arguments every run of a model gets, whatever the dataset.
FIXED = {
    # 200 Gibbs sweeps (the default solver); the gradient solver's entries stop early on 10 % of
    # the ratings, with its default batch and rate.
    "MFRegressor": dict(max_iter=200, early_stopping=True, n_iter_no_change=5),
    # The sampled BPR loss is too noisy to stop on (benchmarks/results/bpr_quality.md): a fixed
    # number of epochs, the constructor's (30, with adaptive negatives; study bpr-ml1m-adaptive).
    "BPRRanker": dict(max_iter=30, early_stopping=False, tol=0.0, n_iter_no_change=100),
    "AutoencoderRecommender (Mult-DAE)": dict(hidden_layer_sizes=(600, 200), learning_rate=2e-3,
                                              batch_size=250, max_iter=200, early_stopping=True,
                                              n_iter_no_change=10),
    "EASE (EDLAE+DAN)": dict(),
    # Patience 20 (SASRec's recipe: 10): on the ML-100k P3 validation targets NDCG@10 rose from
    # 0.0964 / 0.0894 (patience 10, both stopped after 57 epochs) to 0.1081 / 0.1018 (seeds 0 / 1);
    # on Beauty from 0.0712 (best epoch 34, where patience 10 stops at 44) to 0.0716 (epoch 52),
    # test NDCG@10 0.0580 (benchmarks/results/sequence_beauty_p20_cpu; docs/performance.md).
    "SequenceTransformer": dict(n_factors=64, n_layers=2, learning_rate=1e-3, batch_size=128,
                                max_iter=200, early_stopping=True, n_iter_no_change=20),
    "implicit ALS": dict(iterations=15),
    "implicit BPR": dict(iterations=100),
}

GRIDS = {
    "P1": {
        "BaselineBiases": {"damping": [(2.0, 1.0), (5.0, 2.0), (8.0, 3.0)], "regularization": ["l2", "variance"]},
        # The Gibbs sampler has no L2 to tune (its priors are learned): only the size.
        "MFRegressor": [{"solver": ["gibbs"], "n_factors": [8, 16, 32]},
                        {"solver": ["gradient"], "n_factors": [64, 128], "alpha": [0.08, 0.1, 0.12, 0.15]}],
        "Surprise BaselineOnly": {"params": [None]},
        "Surprise SVD": {"params": [{"reg_all": 0.02}, {"reg_all": 0.05}, {"reg_all": 0.1}]},
        "Surprise SVD++": {"params": [{"reg_all": 0.02}, {"reg_all": 0.05}]},
    },
    "P2": {
        "Popularity": {},
        "EASE": {"lam": [50.0, 100.0, 200.0, 400.0, 800.0]},
        "BPRRanker": {"n_factors": [128, 256], "alpha": [0.005, 0.01], "n_negatives": [1, 8]},
        "AutoencoderRecommender (Mult-DAE)": {"input_dropout": [0.5], "alpha": [0.0, 0.01, 0.05]},
        # user_norm shrinks the Gram matrix (rows weighted by n_u ** -user_norm), so the ridge
        # grid reaches down an order of magnitude below EASE's.
        "EASE (EDLAE+DAN)": {"alpha": [2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0],
                             "input_dropout": [0.0, 0.25, 0.5], "user_norm": [0.0, 0.5],
                                               "item_norm": [0.0, 0.2]},
        "implicit ALS": {"factors": [32, 64, 128], "regularization": [1.0, 10.0, 30.0, 100.0], "alpha": [5.0, 20.0]},
        "implicit BPR": {"factors": [128, 256], "learning_rate": [0.002, 0.005, 0.01], "regularization": [0.01]},
        # implicit's grid in skrec's terms (plain L2: implicit's regularization; confidence_weight
        # = implicit's alpha - 1), beside the frequency-scaled L2 of the defaults. alpha and
        # confidence_weight of the latter widened after a first search chose 0.02 (top) and 4 (bottom).
        "ALSRanker": [{"regularization_exponent": [0.0], "n_factors": [32, 64, 128],
                       "alpha": [1.0, 10.0, 30.0, 100.0], "confidence_weight": [4.0, 19.0]},
                      {"n_factors": [32, 64, 128], "alpha": [0.007, 0.02, 0.06, 0.2],
                       "confidence_weight": [1.0, 4.0, 19.0]}],
        # The BM25 forms on the same grid (implicit's K counts the item itself).
        "ItemKNN": {"n_neighbors": [50, 200, 1000], "bm25_k1": [0.5, 1.2], "bm25_b": [0.75, 1.0]},
        "implicit BM25": {"K": [51, 201, 1001], "K1": [0.5, 1.2], "B": [0.75, 1.0]},
        "implicit Cosine": {"K": [10, 20, 50, 100, 300]},
    },
}
GRIDS["P3"] = {"SequenceTransformer": {"max_seq_len": [50, 200], "dropout": [0.2, 0.5]}, **GRIDS["P2"]}
GRIDS["P4"] = dict(GRIDS["P2"])
GRIDS["P5"] = dict(GRIDS["P3"])

# Chosen configurations (see each block's command). Missing entries run the constructor's
# defaults plus FIXED.
PARAMS = {
    # python -m benchmarks tune --dataset ml100k --protocol P1|P2|P3|P4 (CPU, 2026-11-23; EDLAE+DAN
    # searched again on 2026-11-29); the validation score of each choice is in the comment.
    # Logs: benchmarks/results/tune_ml100k.md
    "ml100k": {
        "P1": {
            "BaselineBiases": {"damping": (5.0, 2.0), "regularization": "variance"},  # RMSE 0.9392
            # searched again on 2026-12-01 once MF learns in units of the ratings' standard
            # deviation (benchmarks/results/tune_latest_small.md holds both searches' logs)
            # searched again on 2026-12-02 with the Gibbs solver in the grid (8, 16 and 32 factors
            # within 0.001: 0.8971 / 0.8981 / 0.8972; the best gradient point 0.9211)
            "MFRegressor": {"n_factors": 8, "solver": "gibbs"},  # RMSE 0.8971
            "Surprise BaselineOnly": {"params": None},  # RMSE 0.9450
            "Surprise SVD": {"params": {"reg_all": 0.05}},  # RMSE 0.9363
            "Surprise SVD++": {"params": {"reg_all": 0.02}},  # RMSE 0.9228
        },
        "P2": {  # NDCG@100 of the validation users
            "EASE": {"lam": 400.0},  # 0.4926
            "BPRRanker": {"alpha": 0.005, "n_factors": 128, "n_negatives": 8},  # 0.4791
            "AutoencoderRecommender (Mult-DAE)": {"alpha": 0.01, "input_dropout": 0.5},  # 0.4802
            "EASE (EDLAE+DAN)": {"alpha": 50.0, "input_dropout": 0.25, "item_norm": 0.2,
                                                   "user_norm": 0.5},  # 0.4985
            "implicit ALS": {"alpha": 5.0, "factors": 128, "regularization": 30.0},  # 0.4999 (grid with 128 factors, 2026-12-01)
            "implicit BPR": {"factors": 128, "learning_rate": 0.005, "regularization": 0.01},  # 0.4763
            # 2026-12-01
            "ALSRanker": {"alpha": 30.0, "confidence_weight": 4.0, "n_factors": 128,
                          "regularization_exponent": 0.0},  # 0.4993 (implicit's grid added, 2026-12-01)
            "ItemKNN": {"bm25_b": 0.75, "bm25_k1": 0.5, "n_neighbors": 1000},  # 0.4545
            "implicit BM25": {"B": 0.75, "K": 1001, "K1": 0.5},  # 0.4545
            "implicit Cosine": {"K": 20},  # 0.4224
        },
        "P3": {  # NDCG@10 of the second-to-last items
            "SequenceTransformer": {"dropout": 0.5, "max_seq_len": 200},  # 0.0967
            "EASE": {"lam": 100.0},  # 0.0712
            "BPRRanker": {"alpha": 0.005, "n_factors": 128, "n_negatives": 8},  # 0.0627
            "AutoencoderRecommender (Mult-DAE)": {"alpha": 0.0, "input_dropout": 0.5},  # 0.0682
            "EASE (EDLAE+DAN)": {"alpha": 5.0, "input_dropout": 0.0, "item_norm": 0.0,
                                                   "user_norm": 0.5},  # 0.0748
            "implicit ALS": {"alpha": 5.0, "factors": 128, "regularization": 10.0},  # 0.0768 (2026-12-01)
            "implicit BPR": {"factors": 128, "learning_rate": 0.01, "regularization": 0.01},  # 0.0490
            "ALSRanker": {"alpha": 0.007, "confidence_weight": 1.0, "n_factors": 128},  # 0.0729 (2026-12-01)
            "ItemKNN": {"bm25_b": 1.0, "bm25_k1": 0.5, "n_neighbors": 1000},  # 0.0683
            "implicit BM25": {"B": 1.0, "K": 1001, "K1": 0.5},  # 0.0683
            "implicit Cosine": {"K": 10},  # 0.0656
        },
        "P4": {  # NDCG@20 of 20 % of each user's training part
            "EASE": {"lam": 400.0},  # 0.2543
            "BPRRanker": {"alpha": 0.01, "n_factors": 128, "n_negatives": 8},  # 0.2505
            "AutoencoderRecommender (Mult-DAE)": {"alpha": 0.05, "input_dropout": 0.5},  # 0.2359
            "EASE (EDLAE+DAN)": {"alpha": 25.0, "input_dropout": 0.5, "item_norm": 0.0,
                                                   "user_norm": 0.5},  # 0.2588
            "implicit ALS": {"alpha": 5.0, "factors": 128, "regularization": 30.0},  # 0.2615 (2026-12-01)
            "implicit BPR": {"factors": 128, "learning_rate": 0.005, "regularization": 0.01},  # 0.1927
            "ALSRanker": {"alpha": 0.02, "confidence_weight": 4.0, "n_factors": 128},  # 0.2639 (2026-12-01)
            "ItemKNN": {"bm25_b": 0.75, "bm25_k1": 0.5, "n_neighbors": 1000},  # 0.2429
            "implicit BM25": {"B": 0.75, "K": 1001, "K1": 0.5},  # 0.2429
            "implicit Cosine": {"K": 300},  # 0.2090
        },
    },
    # From the per-model studies on the same P2 split (validation users only):
    # python -m benchmarks study autoencoder-ml1m-dan (benchmarks/results/autoencoder_quality.md)
    # and bpr-ml1m (bpr_quality.md); P3: the settings of a plain SASRec (Kang & McAuley, 2018)
    # (study sequence-ml1m, sequence-beauty). P4 and the peers on ML-1M are not searched yet:
    # they run FIXED and the constructors' defaults.
    "ml1m": {
        "P2": {
            "EASE": {"lam": 800.0},
            "BPRRanker": {"alpha": 0.005, "n_factors": 128, "n_negatives": 8},
            "AutoencoderRecommender (Mult-DAE)": {"alpha": 0.0, "input_dropout": 0.5},
            # alpha 250 on the unweighted Gram's scale (autoencoder_quality.md, DAN section)
            "EASE (EDLAE+DAN)": {"alpha": 22.85, "input_dropout": 0.5, "user_norm": 0.5,
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


# The per-model studies (python -m benchmarks study NAME). Each entry: ``model`` (a CATALOGUE
# name), ``params`` (fixed constructor arguments), ``grid`` (searched with GridSearchCV on the
# protocol's validation data; ``{}`` scores the one configuration there; ``None`` is a fixed
# configuration, fitted on the test fold without a search), ``epochs`` (the epoch policy:
# "refit_best_iteration" - the validation fit stops early and the test fit trains that many
# epochs without stopping; or ``dict(chunk, max_epochs, patience)`` - warm-started chunks of
# epochs, the validation users scored after each, the best state kept, the test fit trained
# to the chosen epoch count in the same chunks), ``adapt`` (a data-dependent setting, see
# benchmarks.studies.ADAPTERS) and ``protocols`` (default: the study's). ``was`` is the
# earlier command the study replaces, ``writeup`` its committed write-up under
# benchmarks/results/.
_EASE_ML1M = dict(model="EASE", grid={"lam": [300.0, 500.0, 800.0, 1200.0]})
# The studies' closed form ran with the former autoencoder's input dropout of 0.5 unless its
# grid searched it.
_CLOSED_FORM = dict(input_dropout=0.5)
# quality_autoencoder's gradient families: (600, 200), tanh, dropout 0.5, no L2, Adam 2e-3, batch 250.
_DEEP = dict(hidden_layer_sizes=(600, 200), input_dropout=0.5, alpha=0.0, learning_rate=2e-3, batch_size=250)
_SASREC = dict(n_factors=64, n_layers=2, learning_rate=1e-3, batch_size=128, objective="causal", max_iter=200,
               n_iter_no_change=20, early_stopping=True, verbose=1)  # patience: see FIXED
_POPULARITY = dict(model="Popularity", params={})
# BPR's former recipe (before adaptive negatives became the default): the studies that measured it
_UNIFORM_BPR = dict(negatives="uniform", negative_alpha=None)
_KNN_K = [100, 300, 700, 1500]
_BM25_K1, _BM25_B = [0.3, 0.5, 1.2, 3.0], [0.5, 0.75, 1.0]

STUDIES = {
    "p1-ml100k": dict(
        about="P1 on MovieLens-100k's official folds u1-u5 (RMSE, MAE), each fold tuned on 10 % of its "
              "base file",
        dataset="ml100k", protocols=("P1",), tune_per_fold=True,
        was="python -m benchmarks.p1_movielens100k", writeup="p1_ml100k.md",
        entries={
            "BaselineBiases": dict(model="BaselineBiases", params={}, grid={
                "damping": [(a_u, a_i) for a_u in (2.0, 3.0, 5.0, 8.0) for a_i in (1.0, 2.0, 3.0, 5.0)],
                "regularization": ["l2", "variance"]}),
            "MFRegressor": dict(model="MFRegressor", params=dict(solver="gibbs", max_iter=200),
                                grid={"n_factors": [8, 16, 32]}),
            "MFRegressor (gradient)": dict(model="MFRegressor",
                                           params=dict(solver="gradient", learning_rate=0.005, batch_size=1024,
                                                       max_iter=200, early_stopping=True, n_iter_no_change=5),
                                           grid={"n_factors": [64, 128], "alpha": [0.08, 0.1, 0.12]},
                                           epochs="refit_best_iteration"),
        }),
    "bpr-ml1m": dict(
        about="BPRRanker on MovieLens-1M positives, P2 and P4: the configuration chosen on the P2 "
              "validation users (128 factors, 8 negatives, 80 epochs)",
        dataset="ml1m", protocols=("P2", "P4"),
        was="python -m benchmarks.quality_bpr --protocols p2,p4 --factors 128 --alpha 0.005 --negatives 8 "
            "--max-iter 80 --n-iter-no-change 100", writeup="bpr_quality.md",
        entries={
            "BPRRanker": dict(model="BPRRanker", params=dict(max_iter=80, n_iter_no_change=100, tol=0.0,
                                                             **_UNIFORM_BPR),
                              grid={"alpha": [0.005], "fold_in": ["gradient"], "n_factors": [128],
                                    "n_negatives": [8]}),
        }),
    "bpr-ml1m-adaptive": dict(
        about="BPRRanker with adaptive negatives (Rendle & Freudenthaler, 2014) on MovieLens-1M positives: "
              "the mean rank and the negatives' L2 searched on the P2 validation users, epochs by chunks "
              "of 10; P4 runs the constructor's defaults",
        dataset="ml1m", protocols=("P2", "P4"),
        was="python -m benchmarks study bpr-ml1m", writeup="bpr_quality.md",
        entries={
            "BPRRanker (adaptive)": dict(model="BPRRanker", protocols=("P2",),
                                         params=dict(negatives="adaptive", n_iter_no_change=1000, tol=0.0),
                                         grid={"adaptive_rank": [0.1, 0.2], "negative_alpha": [0.005, 0.015, 0.03]},
                                         epochs=dict(chunk=10, max_epochs=40, patience=1)),
            "BPRRanker (defaults)": dict(model="BPRRanker", protocols=("P4",), params={}, grid=None),
        }),
    "bpr-ml1m-grid": dict(
        about="BPRRanker on MovieLens-1M positives, P2 and P4: the first grid (alpha 0.001, 0.01; 64 factors, "
              "30 epochs, patience 5)",
        dataset="ml1m", protocols=("P2", "P4"),
        was="python -m benchmarks.quality_bpr", writeup="bpr_quality.md",
        entries={
            "BPRRanker": dict(model="BPRRanker", params=dict(max_iter=30, n_iter_no_change=5, tol=0.0,
                                                             **_UNIFORM_BPR),
                              grid={"alpha": [0.001, 0.01], "fold_in": ["gradient"], "n_factors": [64],
                                    "n_negatives": [1]}),
        }),
    "autoencoder-ml1m": dict(
        about="AutoencoderRecommender on MovieLens-1M positives, P2: the EASE closed form with dropout, "
              "Mult-DAE and Mult-VAE (epochs chosen on the validation users), beside a numpy EASE",
        dataset="ml1m", protocols=("P2",),
        was="python -m benchmarks.quality_autoencoder", writeup="autoencoder_quality.md",
        entries={
            "EASE (reference)": _EASE_ML1M,
            # alpha on the unweighted Gram's scale (ADAPTERS["alpha_on_unweighted_gram"])
            "closed form": dict(model="EASE (EDLAE+DAN)", params=_CLOSED_FORM,
                                grid={"alpha": [200.0, 300.0, 500.0, 800.0], "input_dropout": [0.0, 0.25, 0.5, 0.67, 0.75],
                                      "user_norm": [0.0], "item_norm": [0.0]},
                                adapt="alpha_on_unweighted_gram"),
            "Mult-DAE": dict(model="AutoencoderRecommender (Mult-DAE)", params=_DEEP, grid={},
                             epochs=dict(chunk=5, max_epochs=100, patience=3)),
            "Mult-VAE": dict(model="AutoencoderRecommender (Mult-DAE)",
                             params=dict(_DEEP, variational=True, beta=0.2), grid={},
                             epochs=dict(chunk=5, max_epochs=100, patience=3), adapt="anneal_over_half_the_steps"),
        }),
    "autoencoder-ml1m-fine": dict(
        about="The closed form's finer grid (alpha 350-700, dropout 0.4-0.6) on the same P2 split",
        dataset="ml1m", protocols=("P2",),
        was="python -m benchmarks.quality_autoencoder --skip-deep --alphas 350,400,450,500,600,700 "
            "--dropouts 0.4,0.45,0.5,0.55,0.6", writeup="autoencoder_quality.md",
        entries={
            "EASE (reference)": _EASE_ML1M,
            "closed form": dict(model="EASE (EDLAE+DAN)", params=_CLOSED_FORM,
                                grid={"alpha": [350.0, 400.0, 450.0, 500.0, 600.0, 700.0],
                                      "input_dropout": [0.4, 0.45, 0.5, 0.55, 0.6], "user_norm": [0.0], "item_norm": [0.0]},
                                adapt="alpha_on_unweighted_gram"),
        }),
    "autoencoder-ml1m-dan": dict(
        about="The closed form with DAN's user and item normalisation on the same P2 split",
        dataset="ml1m", protocols=("P2",),
        was="python -m benchmarks.quality_autoencoder --skip-deep --alphas 150,250,400,600 --dropouts 0.5 "
            "--user-norms 0,0.25,0.5,0.75,1 --item-norms 0,0.1,0.2,0.3", writeup="autoencoder_quality.md",
        entries={
            "EASE (reference)": _EASE_ML1M,
            "closed form": dict(model="EASE (EDLAE+DAN)", params=_CLOSED_FORM,
                                grid={"alpha": [150.0, 250.0, 400.0, 600.0], "input_dropout": [0.5],
                                      "user_norm": [0.0, 0.25, 0.5, 0.75, 1.0], "item_norm": [0.0, 0.1, 0.2, 0.3]},
                                adapt="alpha_on_unweighted_gram"),
        }),
    # Dropout above 0.5 together with DAN: an ad hoc search of the validation users found 0.4460
    # at dropout 0.67 and alpha 10 (about 110 on the unweighted scale) against 0.4438 at the
    # suite's point; this grid searches that corner.
    "autoencoder-ml1m-dan-dropout": dict(
        about="The closed form with DAN's normalisations and stronger input dropout (0.5-0.75), P2 "
              "(benchmarks/results/autoencoder_quality.md, last section)",
        dataset="ml1m", protocols=("P2",),
        entries={
            "EASE (reference)": _EASE_ML1M,
            "closed form": dict(model="EASE (EDLAE+DAN)", params=_CLOSED_FORM,
                                grid={"alpha": [50.0, 100.0, 150.0, 250.0],
                                      "input_dropout": [0.5, 0.6, 0.67, 0.75],
                                      "user_norm": [0.5], "item_norm": [0.1, 0.2, 0.3]},
                                adapt="alpha_on_unweighted_gram"),
        }),
    "autoencoder-ml1m-recoder": dict(
        about="recoder's logistic autoencoder with and without mini-batch negative sampling, P2, 40 epochs "
              "checked every 5",
        dataset="ml1m", protocols=("P2",),
        was='python -m benchmarks.quality_autoencoder --skip-closed-form --deep "" --with-recoder --epochs 40',
        writeup="autoencoder_quality.md",
        entries={
            "recoder (every item)": dict(model="AutoencoderRecommender (Mult-DAE)",
                                         params=dict(_DEEP, loss="bce"), grid={},
                                         epochs=dict(chunk=5, max_epochs=40, patience=3)),
            "recoder (negative sampling)": dict(model="AutoencoderRecommender (Mult-DAE)",
                                                params=dict(_DEEP, loss="bce", negative_sampling=True), grid={},
                                                epochs=dict(chunk=5, max_epochs=40, patience=3)),
        }),
    # quality_sequence: the settings of a plain SASRec (Kang & McAuley, 2018), early stopping on each
    # user's second-to-last item inside fit; fixed configurations (Beauty's dropout 0.6 beat the
    # reference's 0.5 on validation NDCG@10: --set dropout=0.5 reruns that check).
    "sequence-beauty": dict(
        about="SequenceTransformer, P3 leave-last-out on S3-Rec Beauty, beside popularity",
        dataset="beauty", protocols=("P3",),
        was="python -m benchmarks.quality_sequence --dataset beauty", writeup="sequence_quality.md",
        entries={
            "SequenceTransformer": dict(model="SequenceTransformer",
                                        params=dict(_SASREC, max_seq_len=50, dropout=0.6)),
            "popularity": _POPULARITY,
        }),
    "sequence-ml1m": dict(
        about="SequenceTransformer, P3 leave-last-out on MovieLens-1M (ratings >= 4), beside popularity",
        dataset="ml1m", protocols=("P3",),
        was="python -m benchmarks.quality_sequence --dataset ml1m", writeup="sequence_quality.md",
        entries={
            "SequenceTransformer": dict(model="SequenceTransformer",
                                        params=dict(_SASREC, max_seq_len=200, dropout=0.2)),
            "popularity": _POPULARITY,
        }),
    # ALSRanker beside implicit's ALS on ML-1M P2 at the configurations each won on the validation
    # users in a 30-point search per library (benchmarks/results/als_ml1m.md); c = 1 + confidence_weight.
    "als-ml1m": dict(
        about="ALSRanker beside implicit's AlternatingLeastSquares on MovieLens-1M positives, P2, each at "
              "its validation-chosen configuration",
        dataset="ml1m", protocols=("P2",),
        entries={
            "ALSRanker": dict(model="ALSRanker", grid={
                "n_factors": [256], "alpha": [0.00708], "confidence_weight": [2.0], "regularization_exponent": [1.0],
                "max_iter": [13]}),
            "implicit ALS": dict(model="implicit ALS", grid={"factors": [128], "regularization": [30.0],
                                                              "alpha": [3.0], "iterations": [6]}),
        }),
    # ItemKNN beside implicit's item-item recommenders, the same grids for the BM25 forms.
    "itemknn-ml1m": dict(
        about="ItemKNN beside implicit's CosineRecommender and BM25Recommender on MovieLens-1M positives, "
              "P2 and P4, every grid searched on validation data",
        dataset="ml1m", protocols=("P2", "P4"),
        entries={
            "ItemKNN (BM25)": dict(model="ItemKNN", params=dict(similarity="dot", weighting="bm25"),
                                   grid={"n_neighbors": _KNN_K, "bm25_k1": _BM25_K1, "bm25_b": _BM25_B}),
            "ItemKNN (cosine)": dict(model="ItemKNN", params=dict(similarity="cosine", weighting="none"),
                                     grid={"n_neighbors": [5, 10, 20, 50, 100, 300, 700, 1500],
                                           "shrinkage": [0.0, 50.0, 200.0]}),
            # implicit's K counts the item itself: K = n_neighbors + 1 keeps as many others.
            "implicit BM25": dict(model="implicit BM25", grid={"K": [k + 1 for k in _KNN_K], "K1": _BM25_K1,
                                                                "B": _BM25_B}),
            "implicit Cosine": dict(model="implicit Cosine", grid={"K": [5, 10, 20, 30, 50, 100, 300, 700, 1500,
                                                                         3000]}),
        }),
    # Every policy above on the small synthetic sets, in seconds: a smoke test of the tool.
    "synthetic-smoke": dict(
        about="Every study feature on the synthetic sets (a smoke test; no quality claim)",
        dataset="synthetic", protocols=("P1", "P2"), tune_per_fold=True,
        entries={
            "BaselineBiases": dict(model="BaselineBiases", protocols=("P1",),
                                   grid={"regularization": ["l2", "variance"]}),
            "MFRegressor": dict(model="MFRegressor", protocols=("P1",),
                                params=dict(n_factors=8, solver="gradient", batch_size=8192, max_iter=4, early_stopping=True,
                                            n_iter_no_change=2),
                                grid={"alpha": [0.05, 0.1]}, epochs="refit_best_iteration"),
            "EASE (reference)": dict(model="EASE", protocols=("P2",), grid={"lam": [50.0, 200.0]}),
            "closed form": dict(model="EASE (EDLAE+DAN)", protocols=("P2",), params=_CLOSED_FORM,
                                grid={"alpha": [20.0, 50.0], "user_norm": [0.0, 0.5]},
                                adapt="alpha_on_unweighted_gram"),
            "Mult-VAE": dict(model="AutoencoderRecommender (Mult-DAE)", protocols=("P2",),
                             params=dict(hidden_layer_sizes=(16,), variational=True, batch_size=500), grid={},
                             epochs=dict(chunk=1, max_epochs=3, patience=1), adapt="anneal_over_half_the_steps"),
            "popularity": dict(_POPULARITY, protocols=("P2",)),
        }),
}
# MovieLens latest-small (shipped with skrec, the offline default): P1 searched (below); the
# rest not yet, so the ML-100k choices (the nearest set: MovieLens users, a similar number of ratings), except that
# the sequence model keeps its defaults (the last 50 items, dropout 0.2), which won on
# latest-small's validation items (NDCG@10 0.0595, against 0.0288 with 200 items and 0.0186
# with dropout 0.5; benchmarks/results/tune_latest_small.md), at most 25 epochs so that the
# default run stays within 5 minutes on 2 cores (early stopping took 84 epochs).
PARAMS["latest-small"] = {p: dict(choices) for p, choices in PARAMS["ml100k"].items()}
PARAMS["latest-small"]["P3"]["SequenceTransformer"] = {"dropout": 0.2, "max_seq_len": 50, "max_iter": 25}
# python -m benchmarks tune --dataset latest-small --protocol P1 (CPU, 2026-12-01;
# benchmarks/results/tune_latest_small.md)
PARAMS["latest-small"]["P1"].update({
    "BaselineBiases": {"damping": (8.0, 3.0), "regularization": "variance"},  # RMSE 0.8731
    # searched again on 2026-12-02 (Gibbs 8 / 16 / 32 factors 0.8421 / 0.8424 / 0.8432; the best
    # gradient point 0.8685)
    "MFRegressor": {"n_factors": 8, "solver": "gibbs"},  # RMSE 0.8421
})
