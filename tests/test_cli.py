import json
import subprocess
import sys

from PIL import Image
from typer.testing import CliRunner

from vitlens.cli import app

runner = CliRunner()


def test_info_vit_base_shows_the_notes_numbers():
    result = runner.invoke(app, ["info", "vit_base_patch16_224"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "12 × 197² = 465,708" in result.output
    assert "86,567,656" in result.output
    assert "35,127,656,448" in result.output


def test_info_json_and_batch_memory():
    result = runner.invoke(app, ["info", "vit_base_patch16_224", "--json", "-b", "2"])
    data = json.loads(result.output)
    assert data["tokens"] == 197 and data["attention_values_per_layer"] == 465_708
    assert data["attention_memory_bytes"]["fp32"] == 465_708 * 12 * 2 * 4


def test_trace_on_an_image_file(tmp_path):
    path = tmp_path / "digit.png"
    img = Image.new("L", (56, 56), 255)  # dark stroke on white paper
    for i in range(10, 46):
        for w in range(-2, 3):
            img.putpixel((28 + w, i), 0)
    img.save(path)
    result = runner.invoke(app, ["trace", "mnist", "--image", str(path), "--layers", "0"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "layers.0.attention" in result.output and "layers.1.attention" not in result.output
    assert "probabilities" in result.output


def test_bad_arguments_give_a_message_and_exit_2(tmp_path):
    result = runner.invoke(app, ["info", "vit_gigantic"])
    assert result.exit_code == 2 and "neither a preset" in result.output
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    result = runner.invoke(app, ["trace", "mnist", "--image", str(broken)], terminal_width=200)
    assert result.exit_code == 2 and "cannot read image" in result.output


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "vitlens.cli", "info", "seed_toy", "--json"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["tokens"] == 10
