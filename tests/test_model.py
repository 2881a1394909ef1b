import itertools

import pytest
import torch
import torch.nn.functional as F

from vitlens import InputError, ViTConfig, create_model, preset
from vitlens.model import LAYER_KEYS, VisionTransformer


def small(**changes) -> ViTConfig:
    base = dict(image_size=(12, 16), patch_size=4, in_channels=3, num_classes=5, dim=16, depth=2, heads=4,
                mean=(0.5,) * 3, std=(0.5,) * 3)
    base.update(changes)
    return ViTConfig(**base)


KNOBS = list(itertools.product(["pre", "post"], ["learned", "learned2d", "sincos2d", "none"], ["cls", "mean"]))


@pytest.mark.parametrize(("block", "position", "pool"), KNOBS)
def test_trace_invariants(block, position, pool):
    torch.manual_seed(0)
    model = create_model(small(block=block, position=position, pool=pool, activation="relu")).eval()
    x = torch.randn(3, 3, 12, 16)
    with torch.no_grad():
        t = model.trace(x)
        logits = model(x)
    torch.testing.assert_close(t["logits"], logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(t["x0"], t["tokens"] + t["position_embeddings"])
    assert t["tokens"].shape == (3, 13, 16) and t["patches"].shape == (3, 12, 3, 4, 4)
    assert t.num_layers == 2
    previous = t["x0"]
    for i in range(2):
        layer = t.layer(i)
        assert set(LAYER_KEYS) <= set(layer)
        block_module = model.blocks[i]
        attn = layer["attention"]
        assert attn.shape == (3, 4, 13, 13)
        torch.testing.assert_close(attn.sum(-1), torch.ones(3, 4, 13))
        torch.testing.assert_close(attn, (layer["scores"]).softmax(-1))
        torch.testing.assert_close(layer["scores"], layer["q"] @ layer["k"].transpose(-2, -1) / 2.0)  # √d = √4
        attn_in = layer["norm1"] if block == "pre" else previous
        q, _, v = block_module.attn.qkv(attn_in).view(3, 13, 3, 4, 4).permute(2, 0, 3, 1, 4)
        torch.testing.assert_close(layer["q"], q)
        torch.testing.assert_close(layer["v"], v)
        mixed = (attn @ layer["v"]).transpose(1, 2).reshape(3, 13, 16)
        torch.testing.assert_close(layer["attention_output"], block_module.attn.proj(mixed))
        torch.testing.assert_close(layer["residual1"], previous + layer["attention_output"])
        if block == "pre":
            torch.testing.assert_close(layer["norm1"], block_module.norm1(previous))
            torch.testing.assert_close(layer["norm2"], block_module.norm2(layer["residual1"]))
            torch.testing.assert_close(layer["residual2"], layer["residual1"] + layer["mlp_output"])
            torch.testing.assert_close(layer["output"], layer["residual2"])
        else:
            torch.testing.assert_close(layer["norm1"], block_module.norm1(layer["residual1"]))
            torch.testing.assert_close(layer["residual2"], layer["norm1"] + layer["mlp_output"])
            torch.testing.assert_close(layer["norm2"], block_module.norm2(layer["residual2"]))
            torch.testing.assert_close(layer["output"], layer["norm2"])
        assert (layer["mlp_hidden"] >= 0).all()  # ReLU
        previous = layer["output"]
    torch.testing.assert_close(t["probabilities"].sum(-1), torch.ones(3))
    expected_pool = t["final_norm"][:, 0] if pool == "cls" else t["final_norm"][:, 1:].mean(1)
    torch.testing.assert_close(t["pooled"], expected_pool)


def test_fused_and_explicit_attention_agree():
    torch.manual_seed(1)
    model = create_model(small(depth=3, image_size=(16, 16))).eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        model.set_attention_backend("fused")
        fused = model(x)
        model.set_explicit_attention(True)
        explicit = model(x)
    assert (fused - explicit).abs().max() < 1e-5


def test_tracing_leaves_the_model_and_results_unchanged():
    torch.manual_seed(2)
    model = create_model("mnist").eval()
    x = torch.randn(2, 1, *model.config.image_size)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        a = model(x)
        model.trace(x)
        b = model(x)
    assert torch.equal(a, b)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_gradients_flow_through_the_fused_path():
    torch.manual_seed(3)
    model = create_model(small(drop_path=0.1, dropout=0.1, attention_dropout=0.1)).train()
    loss = F.cross_entropy(model(torch.randn(2, 3, 12, 16)), torch.tensor([0, 1]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_class_token_free_mean_pooling_and_mlp_head():
    model = create_model(small(class_token=False, pool="mean", head="mlp", head_hidden=[32, 8])).eval()
    t = model.trace(torch.randn(2, 3, 12, 16))
    assert t["tokens"].shape == (2, 12, 16) and t["logits"].shape == (2, 5)
    assert "cls" not in t


@pytest.mark.parametrize("position", ["learned", "learned2d", "sincos2d"])
def test_other_resolutions_with_interpolated_positions(position):
    model = create_model(small(position=position)).eval()
    x = torch.randn(1, 3, 20, 24)
    out = model(x, interpolate_pos_encoding=True)
    assert out.shape == (1, 5)
    same = model(torch.randn(1, 3, 12, 16), interpolate_pos_encoding=True)
    assert same.shape == (1, 5)


def test_position_embeddings_unchanged_on_the_built_grid():
    model = create_model(small())
    assert torch.equal(model.position_embedding((3, 4)), model.position_embedding.weight[0])


# ---------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def mnist_model() -> VisionTransformer:
    """The mnist preset at MNIST's own 28×28 with patch 7 (the messages below name these sizes)."""
    return create_model(preset("mnist", image_size=28, patch_size=7)).eval()


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.randn(3, 28, 28), "images.unsqueeze(1) for a batch of grey images"),
        (torch.randn(1, 28, 28), "images.unsqueeze(0) for one image"),
        (torch.randn(2, 3, 28, 28), "images have 3 channels but the model takes 1"),
        (torch.randn(1, 1, 30, 28), "30×28 is not divisible by the patch size 7"),
        (torch.randn(1, 1, 35, 35), "pass interpolate_pos_encoding=True"),
        (torch.randint(0, 255, (1, 1, 28, 28), dtype=torch.uint8), "dtype torch.uint8"),
        (torch.full((1, 1, 28, 28), float("nan")), "NaN or infinite"),
        (torch.randn(28, 28), "must have shape (B, C, H, W)"),
    ],
)
def test_bad_images_get_specific_errors(mnist_model, images, message):
    with pytest.raises(InputError) as err:
        mnist_model(images)
    assert message in str(err.value)


def test_bad_input_error_also_from_trace(mnist_model):
    with pytest.raises(InputError, match="batch dimension is missing"):
        mnist_model.trace(torch.randn(1, 28, 28))


def test_divisibility_error_suggests_a_size(mnist_model):
    with pytest.raises(InputError, match=r"e\.g\. 28×28"):
        mnist_model(torch.randn(1, 1, 30, 30))


@pytest.mark.parametrize("dim", [64, 768])
def test_weight_init_timm_and_torch(dim):
    """timm: every Linear weight ~ N(0, 0.02) (truncated at ±2, as timm does), biases 0. torch: PyTorch's
    U(±1/√fan_in), of std 1/√(3·fan_in) — about timm's 0.02 at D 768, 3.6× larger at D 64."""
    config = small(dim=dim, heads=4, depth=1, image_size=16)
    for init in ("timm", "torch"):
        torch.manual_seed(0)
        qkv = VisionTransformer(config.replace(weight_init=init)).blocks[0].attn.qkv.requires_grad_(False)
        expected = 0.02 if init == "timm" else (3 * dim) ** -0.5
        assert abs(float(qkv.weight.std()) - expected) < 0.08 * expected
        if init == "torch":
            assert float(qkv.weight.abs().max()) <= dim**-0.5
        assert (qkv.bias == 0).all() == (init == "timm")
    assert preset("mnist").weight_init == "torch" and preset("vit_base_patch16_224").weight_init == "timm"


def test_bf16_weights_take_fp32_images():
    """A model cast to bf16 (for fast inference) takes the same fp32 images and gives nearly the same logits."""
    torch.manual_seed(0)
    model = create_model(small()).eval()
    images = torch.randn(4, 3, 12, 16)
    with torch.inference_mode():
        reference = model(images)
        logits = model.to(torch.bfloat16)(images)
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), reference, atol=0.1, rtol=0.05)


def test_seed_toy_runs():
    model = create_model(preset("seed_toy")).eval()
    t = model.trace(torch.rand(1, 1, 6, 6))
    assert t["x0"].shape == (1, 10, 4)
    assert t["layers.0.mlp_hidden"].shape == (1, 10, 8)
    torch.testing.assert_close(t["final_norm"], t["layers.0.output"])  # post-norm: no extra final norm


def test_gradient_checkpointing_changes_memory_not_gradients():
    """Same loss and gradients (dropout and drop path on: the recomputation replays the same masks)."""
    config = preset("mnist", dropout=0.1, drop_path=0.1)
    grads = []
    for enabled in (False, True):
        torch.manual_seed(0)
        model = VisionTransformer(config).train()
        model.set_gradient_checkpointing(enabled)
        images = torch.randn(8, 1, *config.image_size, generator=torch.Generator().manual_seed(1))
        torch.manual_seed(2)
        saved: dict[int, int] = {}

        def keep(t, saved=saved):
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            loss = F.cross_entropy(model(images), torch.arange(8))
        loss.backward()
        grads.append((loss.detach(), sum(saved.values()), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (loss_a, kept_a, a), (loss_b, kept_b, b) = grads
    assert torch.equal(loss_a, loss_b)
    assert kept_b < kept_a / 3  # what autograd holds for backward outside the recomputed blocks
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6, rtol=1e-5), name
