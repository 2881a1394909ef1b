"""`vitlens bench` runs the real models and writes a report (speed itself is not asserted here)."""

import json

from typer.testing import CliRunner

from vitlens.cli import app


def test_bench_compare_writes_json(tmp_path):
    path = tmp_path / "bench.json"
    res = CliRunner().invoke(app, ["bench", "--configs", "mnist", "--compare", "--rounds", "1", "--min-time", "0.1",
                                   "--batch-size", "16", "--json", str(path)], terminal_width=200)
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


def test_bench_rejects_unknown_configs():
    res = CliRunner().invoke(app, ["bench", "--configs", "vit_giant"])
    assert res.exit_code == 2 and "unknown bench config" in res.output
