"""The study notes' 6×6 worked example (seed 001), recomputed exactly, step by step.

Every number the notes print is shown beside two exact computations (float64):

- ``exact``: from the stated inputs alone (the image, E, the class token, the position table,
  W₁, b₁, W₂, b₂, W_cls, b_cls and the final class token the notes give for the head), carried
  through every step;
- ``from notes``: from the notes' own numbers of the step before, which checks each step's
  arithmetic on its own.

Each printed number gets a mark: ``equal`` (the exact value rounds to the printed one),
``approximate`` (off by at most 1.5 units of the last printed digit: rounding on the way),
``different`` (the inputs or the arithmetic do not give it), or ``illustrative`` (nothing stated
determines it). The notes' attention uses Q = K = V = x⁰ and no 1/√d scale; the standard scaled
attention is shown beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# ------------------------------------------------------------------ the notes' stated inputs
IMAGE = np.array([
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    [0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
    [0.9, 0.8, 0.1, 0.2, 0.7, 0.3],
    [0.2, 0.1, 0.0, 0.3, 0.4, 0.5],
    [0.5, 0.4, 0.3, 0.2, 0.1, 0.0],
    [0.3, 0.6, 0.9, 0.8, 0.7, 0.6],
])
PATCH_NAMES = list("ABCDEFGHI")
TOKENS = ["CLS", *PATCH_NAMES]
E = np.array([[0.2, 0.1, 0.0, -0.1], [0.0, 0.3, 0.2, 0.1], [0.1, 0.0, 0.4, 0.2], [0.3, 0.2, 0.1, 0.0]])
CLS = np.zeros(4)
POSITIONS = np.array([
    [0.1, 0.0, 0.0, 0.0], [0.0, 0.1, 0.0, 0.0], [0.0, 0.0, 0.1, 0.0], [0.0, 0.0, 0.0, 0.1], [0.1, 0.1, 0.0, 0.0],
    [0.0, 0.1, 0.1, 0.0], [0.0, 0.0, 0.1, 0.1], [0.1, 0.0, 0.1, 0.0], [0.0, 0.1, 0.0, 0.1], [0.1, 0.0, 0.0, 0.1],
])
W1 = np.array([
    [0.2, 0.1, 0.0, -0.1, 0.3, 0.0, 0.2, 0.1],
    [0.0, 0.3, 0.2, 0.1, 0.0, 0.4, 0.1, 0.2],
    [0.1, 0.0, 0.4, 0.2, 0.2, 0.1, 0.3, 0.0],
    [0.3, 0.2, 0.1, 0.0, 0.1, 0.2, 0.0, 0.3],
])
B1 = np.full(8, 0.1)
W2 = np.array([
    [0.2, 0.1, 0.3, 0.0], [0.0, 0.2, 0.1, 0.3], [0.1, 0.0, 0.2, 0.2], [0.3, 0.1, 0.0, 0.1],
    [0.2, 0.3, 0.1, 0.0], [0.0, 0.2, 0.3, 0.1], [0.1, 0.1, 0.0, 0.2], [0.0, 0.0, 0.1, 0.3],
])
B2 = np.zeros(4)
W_CLS = np.array([[0.5, -0.2, 0.3], [0.1, 0.8, -0.4], [0.3, 0.2, 0.6], [-0.2, 0.4, 0.1]])
B_CLS = np.array([0.1, -0.1, 0.0])
FINAL_CLS = np.array([2.3, -1.1, 3.2, 1.4])  # "CLS after 12 layers", given by the notes for the head
CLASSES = ["cat", "dog", "bird"]

# ------------------------------------------------------------------ what the notes print
NOTES_EMBEDDINGS = np.array([
    [0.23, 0.17, 0.33, 0.13], [0.24, 0.22, 0.32, 0.08], [0.13, 0.23, 0.16, 0.07], [0.21, 0.33, 0.21, 0.11],
    [0.11, 0.13, 0.07, 0.01], [0.29, 0.24, 0.36, 0.10], [0.28, 0.23, 0.38, 0.09], [0.35, 0.22, 0.46, 0.15],
    [0.25, 0.13, 0.34, 0.11],
])
NOTES_X0 = np.array([
    [0.1, 0.0, 0.0, 0.0], [0.23, 0.27, 0.33, 0.13], [0.24, 0.22, 0.42, 0.08], [0.13, 0.23, 0.16, 0.17],
    [0.31, 0.43, 0.21, 0.11], [0.11, 0.23, 0.17, 0.01], [0.29, 0.24, 0.46, 0.20], [0.38, 0.23, 0.48, 0.09],
    [0.35, 0.32, 0.46, 0.25], [0.35, 0.13, 0.34, 0.21],
])
NOTES_SCORES_E = np.array([0.011, 0.143, 0.149, 0.094, 0.170, 0.084, 0.134, 0.176, 0.194, 0.127])
NOTES_WEIGHTS_E = np.array([0.08, 0.09, 0.09, 0.08, 0.10, 0.08, 0.09, 0.10, 0.10, 0.09])
NOTES_NEW_E = np.array([0.25, 0.22, 0.31, 0.14])
NOTES_AFTER_ATTENTION = np.array([
    [0.22, 0.21, 0.28, 0.12], [0.26, 0.25, 0.35, 0.15], [0.25, 0.24, 0.38, 0.13], [0.21, 0.23, 0.29, 0.15],
    [0.28, 0.35, 0.31, 0.14], [0.25, 0.22, 0.31, 0.14], [0.27, 0.25, 0.39, 0.16], [0.30, 0.25, 0.38, 0.13],
    [0.29, 0.27, 0.37, 0.17], [0.28, 0.20, 0.33, 0.16],
])
NOTES_XW1 = np.array([0.134, 0.162, 0.204, 0.083, 0.169, 0.126, 0.223, 0.109])
NOTES_HIDDEN = np.array([0.234, 0.262, 0.304, 0.183, 0.269, 0.226, 0.323, 0.209])
NOTES_FFN = np.array([0.31, 0.26, 0.35, 0.18])
NOTES_RESIDUAL = np.array([0.42, 0.49, 0.52, 0.19])
NOTES_MEAN, NOTES_VARIANCE, NOTES_STD = 0.405, 0.0162, 0.127
NOTES_NORMALISED = np.array([0.12, 0.67, 0.91, -1.69])
NOTES_LAYER_OUTPUT = np.array([
    [0.8, 0.3, 1.2, -0.5], [0.4, 0.6, 0.8, -0.2], [0.3, 0.5, 0.9, -0.1], [0.2, 0.7, 0.6, 0.0],
    [0.6, 0.4, 1.0, -0.3], [0.12, 0.67, 0.91, -1.69], [0.5, 0.3, 0.8, -0.4], [0.7, 0.4, 0.9, -0.6],
    [0.6, 0.5, 1.1, -0.2], [0.5, 0.2, 0.7, -0.1],
])
NOTES_LOGIT_TERMS = np.array([[1.15, -0.11, 0.96, -0.28], [-0.46, -0.88, 0.64, 0.56], [0.69, 0.44, 1.92, 0.14]])
NOTES_LOGITS_NO_BIAS = np.array([1.72, -0.14, 3.19])
NOTES_LOGITS = np.array([1.82, -0.24, 3.19])
NOTES_EXP = np.array([6.17, 0.79, 24.29])
NOTES_EXP_SUM = 31.25
NOTES_PROBABILITIES = np.array([0.20, 0.03, 0.77])

MARKS = ("equal", "approximate", "different", "illustrative", "input", "computed")


def mark(printed: np.ndarray | float, exact: np.ndarray | float, decimals: int) -> str:
    """equal: the exact value rounds to the printed one; approximate: within 1.5 units of the last
    printed digit; different: further off."""
    p, x = np.asarray(printed, dtype=float), np.asarray(exact, dtype=float)
    unit = 10.0**-decimals
    if np.all(np.abs(np.round(x, decimals) - p) < unit * 1e-3):
        return "equal"
    if np.all(np.abs(x - p) <= 1.5 * unit + 1e-12):
        return "approximate"
    return "different"


@dataclass
class Row:
    """One printed quantity: the notes' value, the exact values and the marks."""

    label: str
    notes: Any
    exact: Any = None
    from_notes: Any = None
    decimals: int = 2
    mark: str = ""
    arithmetic: str = ""  # mark of the notes' value against ``from_notes`` (their own inputs)
    comment: str = ""

    def __post_init__(self) -> None:
        if not self.mark:
            self.mark = mark(self.notes, self.exact, self.decimals) if self.exact is not None else "illustrative"
        if self.from_notes is not None and not self.arithmetic:
            self.arithmetic = mark(self.notes, self.from_notes, self.decimals)

    def as_dict(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            return np.asarray(v).tolist() if v is not None else None

        return {"label": self.label, "notes": plain(self.notes), "exact": plain(self.exact),
                "from_notes": plain(self.from_notes), "decimals": self.decimals, "mark": self.mark,
                "arithmetic": self.arithmetic or None, "comment": self.comment or None}


@dataclass
class Step:
    key: str
    title: str
    text: str
    rows: list[Row] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        extra = {k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v for k, v in self.extra.items()}
        return {"key": self.key, "title": self.title, "text": self.text, "rows": [r.as_dict() for r in self.rows],
                "extra": extra}


# ------------------------------------------------------------------ the computation
def patches_of(image: np.ndarray, p: int = 2) -> np.ndarray:
    """Row-major P×P patches: (N, P, P)."""
    h, w = image.shape
    return np.array([image[r:r + p, c:c + p] for r in range(0, h, p) for c in range(0, w, p)])


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def notes_attention(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The notes' attention: Q = K = V = x, scores x·xᵀ without scaling → (scores, weights, output)."""
    scores = x @ x.T
    weights = softmax(scores)
    return scores, weights, weights @ x


def scaled_attention(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standard scaled dot-product attention with Q = K = V = x: softmax(x·xᵀ/√d)·x."""
    scores = x @ x.T / np.sqrt(x.shape[-1])
    weights = softmax(scores)
    return scores, weights, weights @ x


def ffn(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FFN(x) = ReLU(x·W₁ + b₁)·W₂ + b₂ → (x·W₁, hidden after ReLU, output)."""
    xw1 = x @ W1
    hidden = np.maximum(xw1 + B1, 0)
    return xw1, hidden, hidden @ W2 + B2


def layer_norm(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x − mean) / std over features, as the notes write it (population variance, no ε, no γ/β)."""
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var), mean[..., 0], var[..., 0]


def walkthrough() -> list[Step]:
    """The notes' worked example as a list of steps, in the notes' order (see the module docstring)."""
    steps: list[Step] = []
    patches = patches_of(IMAGE)
    vectors = patches.reshape(9, 4)

    s = Step("1", "Image → 2×2 patches A…I (row-major)",
             "The 6×6 image is cut into nine 2×2 patches, read row by row, left to right.")
    s.rows = [Row(f"patch {n}", patches[i], patches[i], decimals=1) for i, n in enumerate(PATCH_NAMES)]
    s.extra = {"image": IMAGE, "patch_names": PATCH_NAMES}
    steps.append(s)

    s = Step("2", "Flatten each patch", "Each 2×2 patch becomes a 4-vector, read left to right, top to bottom.")
    s.rows = [Row(f"vector {n}", vectors[i], vectors[i], decimals=1) for i, n in enumerate(PATCH_NAMES)]
    steps.append(s)

    embeddings = vectors @ E
    terms = vectors[0][:, None] * E
    s = Step("3", "Linear projection: embedding = vector · E",
             "Each flattened patch is multiplied by the 4×4 matrix E. For patch A the notes write out every "
             "product; the other rows are only printed, and most of them are not what vector · E gives.")
    products = [" + ".join(f"{v:.1f}×{e:.1f}" for v, e in zip(vectors[0], E[:, j], strict=True)) for j in range(4)]
    s.rows = [Row(f"A, feature {j + 1} = {products[j]}", terms[:, j].sum(), terms[:, j].sum()) for j in range(4)]
    s.rows += [Row(f"embedding {n}", NOTES_EMBEDDINGS[i], embeddings[i]) for i, n in enumerate(PATCH_NAMES)]
    s.extra = {"E": E, "patch_A_terms": terms}
    steps.append(s)

    tokens = np.vstack([CLS, embeddings])
    s = Step("4", "Prepend the class token", "The learnable class token (here [0, 0, 0, 0]) goes first: 10 tokens.")
    s.rows = [Row("CLS", CLS, CLS, decimals=1, mark="input")]
    steps.append(s)

    x0 = tokens + POSITIONS
    notes_tokens = np.vstack([CLS, NOTES_EMBEDDINGS])
    s = Step("5", "Add the position embeddings: x⁰ = tokens + E_pos",
             "One learnable 1-D position vector per token (stated). x⁰ is the input of the encoder layer.")
    s.rows = [Row(f"x⁰ {t}", NOTES_X0[i], x0[i], notes_tokens[i] + POSITIONS[i]) for i, t in enumerate(TOKENS)]
    s.extra = {"positions": POSITIONS}
    steps.append(s)

    scores, weights, out = notes_attention(x0)
    n_scores, n_weights, n_out = notes_attention(NOTES_X0)
    sc_scores, sc_weights, sc_out = scaled_attention(x0)
    e = TOKENS.index("E")
    s = Step("6a", "Self-attention for patch E (the notes' convention)",
             "Q = K = V = x⁰ and scores Q·K without the 1/√d scale, softmax over the 10 tokens, then the "
             "weighted sum of the values. The standard scaled attention, softmax(QKᵀ/√d)·V, is shown beside it.")
    s.rows = [Row(f"score E·{t}", NOTES_SCORES_E[j], scores[e, j], n_scores[e, j], decimals=3)
              for j, t in enumerate(TOKENS)]
    s.rows += [Row(f"weight E→{t}", NOTES_WEIGHTS_E[j], weights[e, j], n_weights[e, j]) for j, t in enumerate(TOKENS)]
    s.rows.append(Row("new E (weighted sum)", NOTES_NEW_E, out[e], n_out[e]))
    s.extra = {"scaled_scores_E": sc_scores[e], "scaled_weights_E": sc_weights[e], "scaled_new_E": sc_out[e]}
    steps.append(s)

    s = Step("6b", "Self-attention for every token", "The same computation for each of the 10 rows.")
    s.rows = [Row(f"after attention {t}", NOTES_AFTER_ATTENTION[i], out[i], n_out[i]) for i, t in enumerate(TOKENS)]
    s.extra = {"weights": weights, "scaled_weights": sc_weights, "scaled_output": sc_out}
    steps.append(s)

    xw1, hidden, f_out = ffn(out[e])
    n_xw1, n_hidden, n_out_f = ffn(NOTES_NEW_E)
    s = Step("6c", "Feed-forward network for patch E: ReLU(x·W₁ + b₁)·W₂ + b₂",
             "4 → 8 → 4 with ReLU, applied to the new E of step 6a (W₁, b₁ = 0.1, W₂, b₂ = 0 stated).")
    s.rows = [Row("x·W₁", NOTES_XW1, xw1, n_xw1, decimals=3),
              Row("+ b₁, ReLU", NOTES_HIDDEN, hidden, n_hidden, decimals=3),
              Row("FFN output", NOTES_FFN, f_out, n_out_f)]
    s.extra = {"W1": W1, "b1": B1, "W2": W2, "b2": B2}
    steps.append(s)

    residual = x0[e] + f_out
    n_residual = NOTES_X0[e] + NOTES_FFN
    normed, mean, var = layer_norm(residual)
    n_normed, n_mean, n_var = layer_norm(NOTES_RESIDUAL)
    s = Step("6d", "Residual and LayerNorm for patch E (as the notes write it)",
             "The notes add the FFN output to the *original* x⁰ of E (their step skips the residual and norm "
             "after attention), then normalise: (x − mean)/std over the 4 features, no ε, γ = 1, β = 0.")
    s.rows = [Row("residual x⁰ + FFN", NOTES_RESIDUAL, residual, n_residual),
              Row("mean", NOTES_MEAN, mean, n_mean, decimals=3),
              Row("variance", NOTES_VARIANCE, var, n_var, decimals=4),
              Row("std", NOTES_STD, np.sqrt(var), np.sqrt(n_var), decimals=3),
              Row("normalised (output for E)", NOTES_NORMALISED, normed, n_normed)]
    steps.append(s)

    full_out = np.array([layer_norm(x0[i] + ffn(out[i])[2])[0] for i in range(10)])
    s = Step("6e", "Layer output for every token",
             "Following the notes' procedure for every token gives the `exact` rows. The notes' rows other than "
             "E are illustrative: a LayerNorm output has mean 0 over its features, and theirs do not.")
    for i, t in enumerate(TOKENS):
        if t == "E":
            s.rows.append(Row(f"x¹ {t}", NOTES_LAYER_OUTPUT[i], full_out[i], n_normed))
        else:
            s.rows.append(Row(f"x¹ {t}", NOTES_LAYER_OUTPUT[i], full_out[i], mark="illustrative",
                              comment=f"mean of the printed row {NOTES_LAYER_OUTPUT[i].mean():+.2f} ≠ 0"))
    steps.append(s)

    s = Step("7", "More layers (12 in practice)",
             "The notes' class-token vectors after layers 6 and 12 come from no stated weights: illustrative. The "
             "layer-12 vector is the stated input of the head below.")
    s.rows = [Row("CLS after layer 6", np.array([1.5, -0.2, 2.1, 0.8]), mark="illustrative"),
              Row("CLS after layer 12", FINAL_CLS, FINAL_CLS, decimals=1, mark="input")]
    steps.append(s)

    term_matrix = (FINAL_CLS[:, None] * W_CLS).T
    logits_nb = FINAL_CLS @ W_CLS
    logits = logits_nb + B_CLS
    exp = np.exp(logits)
    probs = exp / exp.sum()
    s = Step("8", "Classification head: logits = CLS · W_cls + b_cls, then softmax",
             "The head is linear, 4 → 3 classes (cat, dog, bird).")
    s.rows = [Row(f"{c}: terms", NOTES_LOGIT_TERMS[k], term_matrix[k]) for k, c in enumerate(CLASSES)]
    s.rows += [Row("logits before bias", NOTES_LOGITS_NO_BIAS, logits_nb), Row("logits", NOTES_LOGITS, logits),
               Row("exp(logits)", NOTES_EXP, exp, np.exp(NOTES_LOGITS)),
               Row("sum of exp", NOTES_EXP_SUM, exp.sum(), np.exp(NOTES_LOGITS).sum()),
               Row("probabilities", NOTES_PROBABILITIES, probs, softmax(NOTES_LOGITS))]
    s.extra = {"W_cls": W_CLS, "b_cls": B_CLS, "prediction": CLASSES[int(probs.argmax())]}
    steps.append(s)

    s = Step("9", "Performance insights", "Attention sizes the notes quote.")
    s.rows = [Row("10² attention scores per head", 100, 10**2, decimals=0),
              Row("197² per head in ViT-B/16 (notes: ≈ 39,000)", 39000, 197**2, decimals=-3,
                  comment="the notes round 38,809 to the thousand"),
              Row("10 × 10 × 12 heads (the toy has 1 head)", 1200, 10 * 10 * 12, decimals=0),
              Row("197 × 197 × 12 per layer (notes: 465,000+)", 465000, 197 * 197 * 12, decimals=-3)]
    steps.append(s)
    return steps


def summary(steps: list[Step]) -> dict[str, list[str]]:
    """Labels of the printed numbers by mark."""
    out: dict[str, list[str]] = {m: [] for m in MARKS}
    for step in steps:
        for row in step.rows:
            out[row.mark].append(f"{step.key} {row.label}")
    return out


# ------------------------------------------------------------------ the same example as a real model
def toy_model() -> Any:
    """The `seed_toy` preset with the notes' weights wherever they are stated.

    Stated: E (patch projection, no bias), the class token, the position table, W₁, b₁, W₂, b₂, W_cls,
    b_cls. Unstated, set explicitly: W_Q = √d·I (cancels the model's 1/√d so the scores are the notes'
    unscaled x·xᵀ), W_K = W_V = I, W_O = I, all their biases 0, LayerNorm γ = 1 and β = 0.
    """
    import torch

    from vitlens.config import preset
    from vitlens.model.block import EncoderBlock
    from vitlens.model.vit import VisionTransformer

    model = VisionTransformer(preset("seed_toy")).double().eval()
    eye = torch.eye(4, dtype=torch.float64)
    block = model.blocks[0]
    assert isinstance(block, EncoderBlock)
    with torch.no_grad():
        model.patch_embedding.proj.weight.copy_(torch.from_numpy(E.T))
        model.patch_embedding.proj.bias.zero_()
        assert model.class_token is not None
        model.class_token.weight.copy_(torch.from_numpy(CLS).view(1, 1, 4))
        model.position_embedding.weight.copy_(torch.from_numpy(POSITIONS)[None])
        block.attn.qkv.weight.copy_(torch.cat([2.0 * eye, eye, eye]))  # √d = 2
        block.attn.qkv.bias.zero_()
        block.attn.proj.weight.copy_(eye)
        block.attn.proj.bias.zero_()
        block.mlp.fc1.weight.copy_(torch.from_numpy(W1.T))
        block.mlp.fc1.bias.copy_(torch.from_numpy(B1))
        block.mlp.fc2.weight.copy_(torch.from_numpy(W2.T))
        block.mlp.fc2.bias.copy_(torch.from_numpy(B2))
        for norm in (block.norm1, block.norm2):
            norm.weight.fill_(1.0)
            norm.bias.zero_()
        model.head.fc.weight.copy_(torch.from_numpy(W_CLS.T))
        model.head.fc.bias.copy_(torch.from_numpy(B_CLS))
    return model


TOY_MODEL_SETTINGS = [
    ("W_Q", "√d·I = 2·I (unstated; cancels the 1/√d scale, so scores are the notes' x·xᵀ)"),
    ("W_K, W_V", "I (unstated: the notes use Q = K = V = x⁰)"),
    ("W_O", "I (unstated)"),
    ("q, k, v and output biases", "0 (unstated)"),
    ("LayerNorm γ, β", "1, 0 (unstated); ε = 1e-5"),
]


def model_steps() -> list[Step]:
    """The toy example computed by the library's own model (`toy_model`), one traced forward pass."""
    import torch

    model = toy_model()
    with torch.no_grad():
        t = model.trace(torch.from_numpy(IMAGE)[None, None])
    x0 = np.vstack([CLS, patches_of(IMAGE).reshape(9, 4) @ E]) + POSITIONS
    scores, weights, out = notes_attention(x0)
    e = TOKENS.index("E")
    layer = t.layer(0)

    def arr(name: str, source: dict[str, Any] | None = None) -> np.ndarray:
        return (source or t)[name][0].numpy()

    steps = [
        Step("m1", "The model's patch embeddings and x⁰", "PatchEmbedding with proj.weight = Eᵀ, then the class "
             "token and the position table: the same as the exact walkthrough.",
             [Row(f"x⁰ {tok}", arr("x0")[i], x0[i]) for i, tok in enumerate(TOKENS)]),
        Step("m2", "The model's attention, row E", "The real Attention module (explicit path, traced).",
             [Row(f"score E·{tok}", arr("scores", layer)[0, e, j], scores[e, j], decimals=6) for j, tok in
              enumerate(TOKENS)]
             + [Row(f"weight E→{tok}", arr("attention", layer)[0, e, j], weights[e, j], decimals=6) for j, tok in
                enumerate(TOKENS)]
             + [Row("attention output E", arr("attention_output", layer)[e], out[e], decimals=6)]),
        Step("m3", "The rest of the real post-norm layer",
             "Unlike the notes' shortcut, the model's layer is x + Attn(x) → LayerNorm → x + FFN(x) → LayerNorm "
             "for every token; these values are the library's, with nothing to compare to in the notes.",
             [Row(f"{name} (CLS)", arr(name, layer)[0], mark="computed") for name in
              ("residual1", "norm1", "mlp_hidden", "mlp_output", "residual2", "output")]),
        Step("m4", "Head and probabilities of the one-layer model",
             "The head on this model's own class token after its single layer (the notes instead feed the head "
             "their stated 12-layer vector).",
             [Row("logits", arr("logits"), mark="computed"),
              Row("probabilities", arr("probabilities"), mark="computed")]),
    ]
    for step in steps[:2]:  # the library's float64 values against the hand computation
        for row in step.rows:
            row.mark = "equal" if np.allclose(row.notes, row.exact, rtol=0, atol=1e-12) else "different"
    steps[0].extra = {"settings": dict(TOY_MODEL_SETTINGS)}
    return steps


# ------------------------------------------------------------------ rendering
_STYLE = {"equal": "green", "approximate": "yellow", "different": "red", "illustrative": "magenta", "input": "cyan",
          "computed": "cyan"}


def _fmt(value: Any, digits: int) -> str:
    """A number, vector or matrix with ``digits`` decimals ("" for None)."""
    if value is None:
        return ""
    a = np.asarray(value, dtype=float)
    if a.ndim == 0:
        return f"{float(a):,.{digits}f}"
    if a.ndim == 2:
        return " / ".join("[" + ", ".join(f"{v:.{digits}f}" for v in r) + "]" for r in a)
    return "[" + ", ".join(f"{v:.{digits}f}" for v in a) + "]"


def _exact(decimals: int) -> int:
    """Computed values are shown with two more decimals than the notes print (none for whole numbers)."""
    return decimals + 2 if decimals > 0 else 0


def rich_tables(steps: list[Step], model: bool = False) -> list[Any]:
    """One rich Table per step: printed value, exact values, marks."""
    from rich.table import Table

    tables = []
    for step in steps:
        table = Table(title=f"[bold]Step {step.key}. {step.title}[/]", caption=step.text, caption_justify="left")
        table.add_column("quantity")
        table.add_column("model (library)" if model else "the notes print")
        table.add_column("exact (by hand)" if model else "exact, from the stated inputs")
        if not model:
            table.add_column("from the notes' own numbers")
        table.add_column("mark")
        for r in step.rows:
            style = _STYLE.get(r.mark, "")
            cells = [r.label, _fmt(r.notes, max(r.decimals, 0)) if not model else _fmt(r.notes, _exact(4)),
                     _fmt(r.exact, _exact(r.decimals)) if not model else _fmt(r.exact, _exact(4))]
            if not model:
                cells.append(_fmt(r.from_notes, _exact(r.decimals)) + (f" ({r.arithmetic})" if r.arithmetic else ""))
            cells.append(f"[{style}]{r.mark}[/]" + (f" — {r.comment}" if r.comment else ""))
            table.add_row(*cells)
        tables.append(table)
    return tables


def markdown(steps: list[Step], model: bool = False) -> str:
    """A document a learner can read: each step's explanation and a table of its numbers."""
    lines = ["# The 6×6 Vision Transformer example, recomputed" + (" by the library's model" if model else ""), "",
             ((__doc__ if not model else toy_model.__doc__) or "").strip(), ""]
    if model:
        lines += ["| weight | set to |", "|---|---|"] + [f"| {k} | {v} |" for k, v in TOY_MODEL_SETTINGS] + [""]
    for step in steps:
        lines += [f"## Step {step.key}. {step.title}", "", step.text, ""]
        if model:
            lines += ["| quantity | model | by hand | mark |", "|---|---|---|---|"]
            lines += [f"| {r.label} | {_fmt(r.notes, _exact(4))} | {_fmt(r.exact, _exact(4))} | {r.mark} |"
                      for r in step.rows]
        else:
            lines += ["| quantity | the notes print | exact | from the notes' numbers | mark |",
                      "|---|---|---|---|---|"]
            lines += [f"| {r.label} | {_fmt(r.notes, max(r.decimals, 0))} | {_fmt(r.exact, _exact(r.decimals))} | "
                      f"{_fmt(r.from_notes, _exact(r.decimals))}{f' ({r.arithmetic})' if r.arithmetic else ''} | "
                      f"**{r.mark}**"
                      f"{f' — {r.comment}' if r.comment else ''} |" for r in step.rows]
        lines.append("")
    if not model:
        lines += ["## Summary of the marks", ""]
        for name, labels in summary(steps).items():
            lines.append(f"- **{name}** ({len(labels)}): {', '.join(labels) if labels else '—'}")
    return "\n".join(lines) + "\n"


def as_json(steps: list[Step]) -> dict[str, Any]:
    return {"steps": [s.as_dict() for s in steps], "summary": summary(steps)}
