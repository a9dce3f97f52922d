"""Fit MFRegressor and BPRRanker data-parallel and write what each rank ended with.

Run under ``torchrun --nproc_per_node=N tests/_ddp_fit.py OUT_DIR``; ``test_data_parallel.py``
compares the ranks with each other and with one process. Also importable: ``configs()`` and
``summary()`` give the in-process reference the same models and numbers.
"""

import json
import os
import sys

import numpy as np


def configs():
    from skrec import BPRRanker, MFRegressor
    from skrec.datasets import load_movielens
    from skrec.model_selection import holdout_split

    ratings = load_movielens("latest-small").ratings
    positives = ratings.multiply(ratings >= 4).tocsr()
    positives.data[:] = 1.0
    return {
        "mf": (MFRegressor(n_factors=16, solver="gradient", max_iter=6, random_state=0, device="cpu"),
               holdout_split(ratings, 0.2, random_state=0)),
        "bpr": (BPRRanker(n_factors=32, n_negatives=2, max_iter=8, random_state=0, device="cpu"),
                holdout_split(positives, 0.2, random_state=0)),
    }


def summary(model, X, y):
    parameters = np.concatenate([p.detach().cpu().numpy().ravel() for p in model.module_.parameters()])
    return {"loss": [h["loss"] for h in model.history_], "val_loss": [h["val_loss"] for h in model.history_],
            "score": float(model.score(X, y)), "checksum": float(np.abs(parameters).sum()),
            "first": parameters[:8].tolist()}


def main(out):
    import torch

    from skrec.parallel import data_parallel

    torch.set_num_threads(1)
    with data_parallel() as group:
        result = {"rank": group.rank, "world_size": group.world_size}
        for name, (model, (X, y)) in configs().items():
            result[name] = summary(model.fit(X), X, y)
    with open(os.path.join(out, f"rank{result['rank']}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
