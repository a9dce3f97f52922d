"""One vocabulary: a parameter name means the same thing in every estimator (docs/architecture.md §5a)."""

import inspect

import pytest

from skrec.base import _LOOP_SPECS, all_estimators
from skrec._torch.training import OPTIMIZERS

ESTIMATORS = all_estimators()
GRADIENT_LOOP = ("learning_rate", "batch_size", "optimizer", "lr_schedule", "lr_cycle")
ITERATIVE_LOOP = ("max_iter", "n_iter_no_change", "tol", "early_stopping", "validation_fraction", "warm_start",
                  "checkpoint_every", "checkpoint_path", "verbose")
RETIRED = {"mode", "tied_embeddings", "user_weight_decay", "item_weight_decay", "dropout_rate", "regularization_strength"}


def params_of(cls):
    return inspect.signature(cls.__init__).parameters


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_gradient_models_carry_the_whole_shared_loop(cls):
    names = set(params_of(cls))
    if "learning_rate" in names:
        assert set(GRADIENT_LOOP + ITERATIVE_LOOP) <= names
    if "max_iter" in names:
        assert set(ITERATIVE_LOOP) - {"validation_fraction", "early_stopping"} <= names


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_shared_names_keep_one_meaning(cls):
    names = set(params_of(cls))
    assert not names & RETIRED
    specs = cls._param_specs
    for name in names & set(_LOOP_SPECS) - {"optimizer", "validation_fraction"}:
        spec, shared = dict(specs[name]), dict(_LOOP_SPECS[name])
        if spec.pop("allow_none", False) and not shared.pop("allow_none", False):
            assert params_of(cls)[name].default is None, name  # None = the model chooses: the default
        assert spec == shared, name  # same type and bounds everywhere
    if "optimizer" in names:  # always a torch optimizer, never a solver
        assert set(specs["optimizer"]["options"]) <= set(OPTIMIZERS)
    if "solver" in names:  # always which trainer fits the model
        assert set(specs["solver"]["options"]) <= {"gradient", "als", "closed_form", "gibbs"}
    if "n_negatives" in names:  # per positive; shared draws are n_shared_negatives
        assert "n_shared_negatives" not in names
    if "loss" in names:
        assert "logistic" not in specs["loss"]["options"]
    if "hidden_layer_sizes" in names:
        assert isinstance(params_of(cls)["hidden_layer_sizes"].default, tuple)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_parameter_is_keyword_only_or_the_first_structural_one(cls):
    positional = [p for p in list(params_of(cls).values())[1:] if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert len(positional) <= 2, [p.name for p in positional]
