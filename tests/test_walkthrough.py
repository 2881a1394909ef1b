"""The notes' 6×6 example: every exact value against an independent numpy computation (explicit loops)."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vitlens import walkthrough as wt
from vitlens.cli import app

STEPS = {s.key: s for s in wt.walkthrough()}


def rows(key):
    return {r.label: r for r in STEPS[key].rows}


def dot(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def vec_mat(v, m):
    return [sum(v[i] * m[i][j] for i in range(len(v))) for j in range(len(m[0]))]


def softmax(xs):
    z = [math.exp(x - max(xs)) for x in xs]
    return [v / sum(z) for v in z]


IMAGE = wt.IMAGE.tolist()
PATCH_VECTORS = [[IMAGE[r][c], IMAGE[r][c + 1], IMAGE[r + 1][c], IMAGE[r + 1][c + 1]]
                 for r in (0, 2, 4) for c in (0, 2, 4)]
EMB = [vec_mat(v, wt.E.tolist()) for v in PATCH_VECTORS]
X0 = [[a + b for a, b in zip(tok, pos, strict=True)] for tok, pos in zip([[0.0] * 4, *EMB], wt.POSITIONS.tolist(),
                                                                          strict=True)]


def attend(x, i, scale=1.0):
    scores = [dot(x[i], x[j]) * scale for j in range(len(x))]
    w = softmax(scores)
    return scores, w, [sum(w[j] * x[j][f] for j in range(len(x))) for f in range(4)]


SEED = next((Path(__file__).resolve().parents[2] / "shared" / "seeds").glob("001_*.txt"), None) \
    if (Path(__file__).resolve().parents[2] / "shared" / "seeds").is_dir() else None


@pytest.mark.skipif(SEED is None, reason="the study notes (../shared/seeds) are not beside this checkout")
def test_inputs_are_the_notes_own():
    assert SEED is not None
    text = SEED.read_text()
    image = [[float(v) for v in m.group(1).split()] for m in re.finditer(r"^Row \d: ((?:[\d.]+ ?){6})$", text, re.M)]
    assert image == wt.IMAGE.tolist()
    block = text[text.index("E = [[") : text.index("]]", text.index("E = [[")) + 2]
    e = [[float(v) for v in re.findall(r"-?\d+\.\d+", row)] for row in block.split("\n")]
    assert e == wt.E.tolist()
    assert "[1.82, -0.24, 3.19]" in text and "[2.3, -1.1, 3.2, 1.4]" in text


def test_patches_vectors_and_projection():
    for n, name in enumerate(wt.PATCH_NAMES):
        np.testing.assert_allclose(rows("2")[f"vector {name}"].exact, PATCH_VECTORS[n])
        np.testing.assert_allclose(rows("3")[f"embedding {name}"].exact, EMB[n], atol=1e-12)
    marks = {name: rows("3")[f"embedding {name}"].mark for name in wt.PATCH_NAMES}
    assert marks == {"A": "equal", "B": "different", "C": "different", "D": "different", "E": "equal",
                     "F": "different", "G": "different", "H": "different", "I": "different"}
    assert all(r.mark == "equal" for r in STEPS["3"].rows if r.label.startswith("A, feature"))


def test_x0_and_the_notes_own_arithmetic():
    for i, tok in enumerate(wt.TOKENS):
        r = rows("5")[f"x⁰ {tok}"]
        np.testing.assert_allclose(r.exact, X0[i], atol=1e-12)
        assert r.arithmetic == "equal"  # the notes add their embeddings and positions correctly
    assert rows("5")["x⁰ A"].mark == "equal" and rows("5")["x⁰ B"].mark == "different"


def test_attention_for_patch_e_unscaled_and_scaled():
    e = wt.TOKENS.index("E")
    scores, weights, new_e = attend(X0, e)
    for j, tok in enumerate(wt.TOKENS):
        assert rows("6a")[f"score E·{tok}"].exact == pytest.approx(scores[j], abs=1e-12)
        assert rows("6a")[f"weight E→{tok}"].exact == pytest.approx(weights[j], abs=1e-12)
    np.testing.assert_allclose(rows("6a")["new E (weighted sum)"].exact, new_e, atol=1e-12)
    _, scaled_w, scaled_out = attend(X0, e, 1 / math.sqrt(4))
    np.testing.assert_allclose(STEPS["6a"].extra["scaled_weights_E"], scaled_w, atol=1e-12)
    np.testing.assert_allclose(STEPS["6a"].extra["scaled_new_E"], scaled_out, atol=1e-12)
    assert rows("6a")["score E·CLS"].mark == "equal"  # 0.11 × 0.1 = 0.011
    notes_scores, _, _ = attend(wt.NOTES_X0.tolist(), e)
    assert rows("6a")["score E·A"].from_notes == pytest.approx(notes_scores[1])
    assert rows("6a")["score E·A"].arithmetic == "different"  # 0.1448 from their own x⁰, printed 0.143


def test_feed_forward_residual_and_layer_norm():
    e = wt.TOKENS.index("E")
    _, _, new_e = attend(X0, e)
    xw1 = vec_mat(new_e, wt.W1.tolist())
    hidden = [max(0.0, v + 0.1) for v in xw1]
    out = vec_mat(hidden, wt.W2.tolist())
    np.testing.assert_allclose(rows("6c")["x·W₁"].exact, xw1, atol=1e-12)
    np.testing.assert_allclose(rows("6c")["FFN output"].exact, out, atol=1e-12)
    residual = [a + b for a, b in zip(X0[e], out, strict=True)]
    mean = sum(residual) / 4
    var = sum((v - mean) ** 2 for v in residual) / 4
    normed = [(v - mean) / math.sqrt(var) for v in residual]
    np.testing.assert_allclose(rows("6d")["normalised (output for E)"].exact, normed, atol=1e-12)
    # the notes' own step: residual and mean are right, the variance of their residual is 0.016725, not 0.0162
    r = rows("6d")
    assert r["residual x⁰ + FFN"].arithmetic == "equal" and r["mean"].arithmetic == "equal"
    assert r["variance"].from_notes == pytest.approx(0.016725) and r["variance"].arithmetic == "different"
    assert r["std"].arithmetic == "different" and r["normalised (output for E)"].arithmetic == "different"


def test_illustrative_steps_are_labelled():
    marks = {r.label: r.mark for r in STEPS["6e"].rows}
    assert all(m == "illustrative" for label, m in marks.items() if label != "x¹ E")
    assert rows("7")["CLS after layer 6"].mark == "illustrative"
    assert rows("7")["CLS after layer 12"].mark == "input"
    summary = wt.summary(list(STEPS.values()))
    assert len(summary["illustrative"]) == 10


def test_head_logits_and_probabilities():
    logits = [dot(wt.FINAL_CLS.tolist(), wt.W_CLS[:, k].tolist()) + wt.B_CLS[k] for k in range(3)]
    probs = softmax(logits)
    np.testing.assert_allclose(rows("8")["logits"].exact, logits, atol=1e-12)
    np.testing.assert_allclose(rows("8")["probabilities"].exact, probs, atol=1e-12)
    assert rows("8")["logits"].mark == "equal"  # [1.82, -0.24, 3.19]
    assert rows("8")["probabilities"].mark == "approximate"  # bird 0.7773 printed as 0.77
    assert STEPS["8"].extra["prediction"] == "bird"


def test_the_real_model_reproduces_the_hand_computation():
    steps = {s.key: s for s in wt.model_steps()}
    assert all(r.mark == "equal" for key in ("m1", "m2") for r in steps[key].rows)
    probs = steps["m4"].rows[1].notes
    assert probs.sum() == pytest.approx(1.0)


def test_cli_formats(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["explain", "--walkthrough", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [s["key"] for s in data["steps"]][:3] == ["1", "2", "3"] and "illustrative" in data["summary"]
    res = runner.invoke(app, ["explain", "--walkthrough", "--format", "markdown", "-o", str(tmp_path / "w.md")])
    text = (tmp_path / "w.md").read_text()
    assert "## Step 6a" in text and "**different**" in text and "## Summary of the marks" in text
    res = runner.invoke(app, ["explain", "--walkthrough", "--model"], terminal_width=200)
    assert res.exit_code == 0 and "Step m2" in res.output
    res = runner.invoke(app, ["explain", "--walkthrough"], terminal_width=200)
    assert res.exit_code == 0 and "Step 8" in res.output
