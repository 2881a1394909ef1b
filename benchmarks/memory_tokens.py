"""Peak memory of one training step (forward + backward) against the number of tokens, for the fused
attention (SDPA), the explicit softmax(QKᵀ/√d)V path, and the fused path with gradient checkpointing.

    python benchmarks/memory_tokens.py [--model vit_base_patch16_224] [--sizes 224,384,512] [--batch 1]

Each measurement runs in a fresh process: it builds the model, runs one small warm-up step, reads the
process's peak resident memory, runs the step at the size being measured and reads the peak again;
the difference is the step's extra memory. The same process also sums the bytes of the tensors
autograd keeps for the backward pass (activations; parameters not counted), which is exact and
shows the h·T² term: the explicit path keeps every layer's attention weights, the fused kernel
keeps only O(T) per row. Writes JSON (default benchmarks/results/memory_tokens.json).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch


def measure(model_name: str, size: int, batch: int, mode: str) -> dict:
    """One measurement (run in a child process)."""
    from vitlens import create_model
    from vitlens.bench import peak_rss_mib

    torch.manual_seed(0)
    model = create_model(model_name, image_size=size, num_classes=10)
    model.train()
    if mode == "explicit":
        model.set_explicit_attention(True)
    else:
        model.set_attention_backend("fused")
    model.set_gradient_checkpointing(mode == "fused+checkpointing")
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def step(images: torch.Tensor) -> None:
        loss = torch.nn.functional.cross_entropy(model(images), torch.zeros(images.shape[0], dtype=torch.long))
        loss.backward()
        model.zero_grad(set_to_none=False)

    small = model.config.patch_size * 2
    model.check_inputs = False
    step(torch.randn(1, 3, small, small))  # warm-up: allocates gradients, loads kernels
    before = peak_rss_mib()
    images = torch.randn(batch, 3, size, size)
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = torch.nn.functional.cross_entropy(model(images), torch.zeros(batch, dtype=torch.long))
    loss.backward()
    seconds = time.perf_counter() - start
    c = model.config
    tokens = c.num_tokens
    return {"model": model_name, "image_size": size, "batch": batch, "mode": mode, "tokens": tokens,
            "peak_extra_mib": round(peak_rss_mib() - before, 1),
            "saved_for_backward_mib": round(sum(saved.values()) / 2**20, 1),
            "attention_weights_all_layers_mib": round(c.depth * batch * c.heads * tokens**2 * 4 / 2**20, 1),
            "step_seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vit_base_patch16_224")
    parser.add_argument("--sizes", default="224,384,512")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--modes", default="fused,explicit,fused+checkpointing")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "memory_tokens.json")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, size, batch, mode = args.child
        print(json.dumps(measure(name, int(size), int(batch), mode)))
        return
    rows = []
    for size in map(int, args.sizes.split(",")):
        for mode in args.modes.split(","):
            out = subprocess.run([sys.executable, __file__, "--child", args.model, str(size), str(args.batch), mode],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]))
    report = {"benchmark": "memory_tokens", "torch": torch.__version__, "device": "cpu", "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
