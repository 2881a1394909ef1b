import os

import pytest
import torch

from vitlens import walkthrough

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))

SEED_IMAGE = walkthrough.IMAGE.tolist()  # checked against the notes' own text in test_walkthrough.py

@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """The mnist preset trained on the whole bundled sample for 10 epochs (about 25 s): (folder, result)."""
    from vitlens.training import TrainConfig, train

    out = tmp_path_factory.mktemp("trained") / "run"
    return out, train("mnist", None, out, TrainConfig(epochs=10), progress=False)


@pytest.fixture
def seed_image() -> torch.Tensor:
    return torch.tensor(SEED_IMAGE, dtype=torch.float64)[None, None]
