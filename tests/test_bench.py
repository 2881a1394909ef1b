"""`vitlens bench` runs the real models and writes a report (speed itself is not asserted here)."""

import json

from typer.testing import CliRunner

from vitlens.bench import CONFIGS, variants
from vitlens.cli import app


def test_bench_compare_writes_json(tmp_path):
    path = tmp_path / "bench.json"
    res = CliRunner().invoke(app, ["bench", "--configs", "mnist", "--compare", "--precision", "fp32", "--rounds", "1",
                                   "--min-time", "0.1", "--batch-size", "16", "--json", str(path)], terminal_width=200)
    assert res.exit_code == 0, res.output
    report = json.loads(path.read_text())
    assert report["matmul_peak_gflop_per_s"]["fp32"] > 0
    ours = next(r for r in report["results"] if r["library"] == "vitlens")
    assert ours["train_images_per_s"] > 0 and ours["inference_images_per_s"] > ours["train_images_per_s"]
    assert 0 < ours["train_fraction_of_fp32_peak"] < 5
    libraries = {r["library"] for r in report["results"]}
    assert libraries == {"vitlens", "transformers", "vit-pytorch"}
    assert {r["measure"] for r in report["ratios"]} == {"train_images_per_s", "inference_images_per_s"}
    assert "vitlens ÷ best peer" in res.output


def test_bench_bf16_row(tmp_path):
    """--precision bf16 adds a vitlens bf16 row (training under bf16 autocast, inference with bf16 weights),
    measured against the bf16 matmul peak; without peers there are no ratios."""
    path = tmp_path / "bench.json"
    res = CliRunner().invoke(app, ["bench", "--configs", "mnist", "--precision", "bf16", "--rounds", "1",
                                   "--min-time", "0.05", "--batch-size", "8", "--json", str(path)], terminal_width=200)
    assert res.exit_code == 0, res.output
    report = json.loads(path.read_text())
    rows = {r["library"]: r for r in report["results"]}
    assert set(rows) == {"vitlens", "vitlens bf16"}
    bf16, fp32 = rows["vitlens bf16"], rows["vitlens"]
    assert (bf16["precision"], fp32["precision"]) == ("bf16", "fp32") and not bf16["compiled"]
    peak = report["matmul_peak_gflop_per_s"]
    assert bf16["train_fraction_of_peak"] == bf16["train_gflop_per_s"] / peak["bf16"]
    assert fp32["train_fraction_of_peak"] == fp32["train_fraction_of_fp32_peak"]
    assert report["ratios"] == [] and "bf16" in res.output


def test_bench_variants_with_compile():
    """--compile measures every library compiled as well as eager (compiling here would take minutes of C++
    builds, so the rows are checked, not run)."""
    rows = variants(["vitlens", "transformers"], "bf16", compile=True)
    assert [label for label, *_ in rows] == ["vitlens", "vitlens compiled", "vitlens bf16", "vitlens bf16 compiled",
                                             "transformers", "transformers compiled"]
    assert [(dtype, compiled) for _, lib, dtype, compiled in rows if lib == "transformers"] == [(None, False),
                                                                                                 (None, True)]
    assert [label for label, *_ in variants(["vitlens"], "fp32", compile=False)] == ["vitlens"]


def test_bench_configs_are_the_stated_models():
    sizes = {name: (c.image_size, c.patch_size, c.dim, c.depth, c.heads) for name, c in
             ((name, make()) for name, make in CONFIGS.items())}
    assert sizes["mnist_patch4"] == ((28, 28), 4, 64, 6, 4)  # the reference model
    assert sizes["mnist"] == ((30, 30), 6, 64, 6, 4)
    assert sizes["vit_small_patch16_224"] == ((224, 224), 16, 384, 12, 6)


def test_bench_rejects_unknown_configs():
    res = CliRunner().invoke(app, ["bench", "--configs", "vit_giant"])
    assert res.exit_code == 2 and "unknown bench config" in res.output


def test_bench_checkpoint_compares_inference_runtimes(trained, tmp_path):
    """fp32 PyTorch, bf16 weights, dynamic int8 and onnxruntime on the bundled test digits: accuracy cost and
    latency."""
    path = tmp_path / "deploy.json"
    res = CliRunner().invoke(app, ["bench", "--checkpoint", str(trained[0]), "--min-time", "0.1", "--batch-size", "32",
                                   "--json", str(path)], terminal_width=200)
    assert res.exit_code == 0, res.output
    rows = {r["runtime"]: r for r in json.loads(path.read_text())["runtimes"]}
    assert set(rows) == {"pytorch fp32", "pytorch bf16", "pytorch int8 dynamic", "onnxruntime fp32"}
    fp32, int8, ort = rows["pytorch fp32"], rows["pytorch int8 dynamic"], rows["onnxruntime fp32"]
    bf16 = rows["pytorch bf16"]
    assert bf16["agreement_with_fp32"] >= 0.95 and 0 < bf16["max_probability_difference"] < 0.5
    assert abs(bf16["accuracy"] - fp32["accuracy"]) < 0.03
    assert fp32["accuracy"] == trained[1].final["test_accuracy"]  # the same 1,000 digits the run evaluated
    assert ort["agreement_with_fp32"] == 1.0 and ort["max_probability_difference"] < 1e-4
    assert int8["agreement_with_fp32"] >= 0.95 and 0 < int8["max_probability_difference"] < 0.5
    assert abs(int8["accuracy"] - fp32["accuracy"]) < 0.03
    for r in rows.values():
        assert 0 < r["latency_ms_p50"] <= r["latency_ms_p99"] and r["images_per_s"] > 0 and r["batch_size"] == 32
