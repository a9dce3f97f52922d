"""Shared fixtures: where the real data lives, and a CUDA marker that skips without CUDA."""

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_home():
    """The real data folder: $SKREC_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("SKREC_DATA")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_home():
    path = shared_data_home()
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (set SKREC_DATA to run these tests)")
    return path


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skipif(not torch.cuda.is_available(),
                              reason="CUDA is not available on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
