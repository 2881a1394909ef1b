"""torchrun + DDP: 2 processes (gloo, CPU) end with the weights of 1 process at the same global batch."""

import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from vitlens import preset
from vitlens.data import load_data
from vitlens.data.idx import write_idx


def run(args, tmp_path, procs):
    env = os.environ | {"OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if procs > 1 \
        else [sys.executable]
    done = subprocess.run([*prefix, "-m", "vitlens", "train", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_two_processes_match_one_at_the_same_global_batch(tmp_path):
    data = load_data()
    folder = tmp_path / "digits"
    folder.mkdir()
    for prefix, part, n in (("train", "train", 400), ("t10k", "test", 100)):
        subset = data[part].subset(range(0, n * 10, 10))
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", subset.images[:, 0].numpy())
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", subset.labels.numpy().astype("uint8"))
    preset("mnist", dim=32, depth=2, heads=2).to_json(tmp_path / "tiny.json")
    common = ["--model", "tiny.json", "--data", f"mnist:{folder}", "--epochs", "2", "--batch-size", "40"]
    run([*common, "--out", "one"], tmp_path, 1)
    out = run([*common, "--out", "two"], tmp_path, 2)
    assert out.count("test accuracy") == 1  # only rank 0 reports and writes
    one, two = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert one.keys() == two.keys()
    # The key bias adds q·b_k to every score of a query, which the softmax cancels: its true gradient is 0, so
    # Adam turns the rounding noise of the two reductions into lr-sized steps. Every other weight must agree.
    dim = 32
    for k in one:
        if k.endswith("attn.qkv.bias"):
            one[k], two[k] = torch.cat([one[k][:dim], one[k][2 * dim:]]), torch.cat([two[k][:dim], two[k][2 * dim:]])
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert worst < 1e-5, worst
    initial = torch.load(tmp_path / "one" / "training_state.pt", weights_only=True)
    assert initial["step"] == 20  # 2 epochs × 400 / 40
