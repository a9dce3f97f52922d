"""pytest settings for the examples in skrec's docstrings (run with ``--doctest-modules``)."""

import pytest
import torch
from _pytest.doctest import DoctestItem


@pytest.fixture(autouse=True)
def _examples_run_on_the_cpu(request, monkeypatch):
    """Docstring examples print exact values computed on the CPU; on a GPU machine they still
    run there (``device="auto"`` resolves to the CPU), so their output is the same everywhere.
    The CUDA paths are checked by the tests marked ``cuda``."""
    if isinstance(request.node, DoctestItem):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
