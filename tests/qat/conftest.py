from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(autouse=True)
def _two_threads():
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(2)
