"""Shared fixtures for the whole suite."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny networks on a shared 2-core CI machine: one torch thread avoids 10-20x slowdowns from contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
