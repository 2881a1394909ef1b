import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vitlens.model import patchify, unpatchify


@st.composite
def images_and_patch(draw):
    p = draw(st.integers(1, 5))
    gh, gw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    b, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, gh * p, gw * p, generator=g), p


@settings(max_examples=60, deadline=None)
@given(images_and_patch())
def test_patchify_is_row_major(case):
    images, p = case
    patches = patchify(images, p)
    gw = images.shape[-1] // p
    assert patches.shape == (images.shape[0], (images.shape[-2] // p) * gw, images.shape[1], p, p)
    for n in range(patches.shape[1]):
        r, c = divmod(n, gw)
        assert torch.equal(patches[:, n], images[:, :, r * p:(r + 1) * p, c * p:(c + 1) * p])


@settings(max_examples=60, deadline=None)
@given(images_and_patch())
def test_unpatchify_inverts_patchify(case):
    images, p = case
    grid = (images.shape[-2] // p, images.shape[-1] // p)
    assert torch.equal(unpatchify(patchify(images, p), grid), images)


def test_seed_image_gives_the_notes_patches(seed_image):
    # seed 001, "Detailed Patch Extraction": patches A…I as 2×2 blocks, and their flattened vectors
    expected = {
        "A": [[0.1, 0.2], [0.6, 0.5]], "B": [[0.3, 0.4], [0.4, 0.3]], "C": [[0.5, 0.6], [0.2, 0.1]],
        "D": [[0.9, 0.8], [0.2, 0.1]], "E": [[0.1, 0.2], [0.0, 0.3]], "F": [[0.7, 0.3], [0.4, 0.5]],
        "G": [[0.5, 0.4], [0.3, 0.6]], "H": [[0.3, 0.2], [0.9, 0.8]], "I": [[0.1, 0.0], [0.7, 0.6]],
    }
    patches = patchify(seed_image, 2)
    assert patches.shape == (1, 9, 1, 2, 2)
    for n, (name, block) in enumerate(expected.items()):
        assert torch.equal(patches[0, n, 0], torch.tensor(block, dtype=torch.float64)), name
        assert patches[0, n].flatten().tolist() == [v for row in block for v in row], name
