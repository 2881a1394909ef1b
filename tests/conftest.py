import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))

# The study notes' 6×6 image (seed 001), rows top to bottom.
SEED_IMAGE = [
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    [0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
    [0.9, 0.8, 0.1, 0.2, 0.7, 0.3],
    [0.2, 0.1, 0.0, 0.3, 0.4, 0.5],
    [0.5, 0.4, 0.3, 0.2, 0.1, 0.0],
    [0.3, 0.6, 0.9, 0.8, 0.7, 0.6],
]


@pytest.fixture
def seed_image() -> torch.Tensor:
    return torch.tensor(SEED_IMAGE, dtype=torch.float64)[None, None]
