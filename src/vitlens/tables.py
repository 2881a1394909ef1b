"""Rich tables for the terminal: model info and traced intermediates."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from torch import Tensor

from vitlens.inference import top_classes
from vitlens.info import ModelInfo
from vitlens.model.trace import LAYER_KEYS, Trace


def _human(n: float, unit: str = "") -> str:
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".strip()


def _bytes(n: int) -> str:
    for div, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= div:
            return f"{n / div:.2f} {suffix}"
    return f"{n} B"


def info_tables(info: ModelInfo) -> list[Table]:
    """Parameters per part, compute per image, and attention sizes."""
    c = info.config
    size = f"{c.image_size[0]}×{c.image_size[1]}×{c.in_channels}"
    summary = Table(title=f"{c.name or 'model'}: {size}, patch {c.patch_size}")
    summary.add_column("quantity")
    summary.add_column("value", justify="right")
    rows = [
        ("patches N = H·W/P²", f"{c.num_patches} ({c.grid_size[0]}×{c.grid_size[1]})"),
        ("tokens T = N + 1" if c.class_token else "tokens T = N", str(c.num_tokens)),
        ("dim D / heads h / head dim d", f"{c.dim} / {c.heads} / {c.head_dim}"),
        ("depth L / MLP width M", f"{c.depth} / {c.hidden_dim}"),
        ("block / activation / positions / pool / head",
         f"{c.block} / {c.activation} / {c.position} / {c.pool} / {c.head}"),
        ("parameters", f"{info.total_parameters:,}"),
        ("MACs per image", f"{info.total_macs:,} ({_human(info.total_macs)})"),
        ("FLOPs per image (2 per MAC)", f"{info.flops:,} ({_human(info.flops, 'FLOP')})"),
        ("attention values per layer h·T²", f"{c.heads} × {c.num_tokens}² = {info.attention_values_per_layer:,}"),
        (
            f"attention maps, all {c.depth} layers, batch {info.batch_size}",
            f"{_bytes(info.attention_bytes(4))} fp32 / {_bytes(info.attention_bytes(2))} bf16",
        ),
    ]
    for row in rows:
        summary.add_row(*row)
    params = _shares_table("parameters per part", "parameters", info.parameters)
    macs = _shares_table("multiply-adds per image (FLOPs = 2 × MACs)", "MACs", info.macs)
    return [summary, params, macs]


def _shares_table(title: str, unit: str, counts: dict[str, int]) -> Table:
    """Counts per part with each part's share of the total."""
    table = Table(title=title)
    table.add_column("part")
    table.add_column(unit, justify="right")
    table.add_column("share", justify="right")
    total = max(sum(counts.values()), 1)
    for name, count in counts.items():
        table.add_row(name, f"{count:,}", f"{100 * count / total:.1f} %")
    return table


def _stats(t: Tensor) -> tuple[str, str, str, str]:
    t = t.detach().float()
    return (f"{t.mean().item():+.4f}", f"{t.std().item() if t.numel() > 1 else 0.0:.4f}",
            f"{t.min().item():+.4f}", f"{t.max().item():+.4f}")


def trace_table(trace: Trace, layers: list[int] | None = None) -> Table:
    """Every intermediate with its shape and summary statistics, in the order the model computes them."""
    table = Table(title="every intermediate of the forward pass (image 0 of the batch)")
    for col, just in (("name", "left"), ("shape", "left"), ("mean", "right"), ("std", "right"),
                      ("min", "right"), ("max", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    chosen = range(trace.num_layers) if layers is None else layers
    order = ["image", "patches", "patch_vectors", "patch_embeddings", "tokens", "position_embeddings", "x0"]
    order += [f"layers.{i}.{k}" for i in chosen for k in LAYER_KEYS]
    order += ["final_norm", "pooled", "logits", "probabilities"]
    for name in order:
        if name in trace:
            value = trace[name]
            shown = value if name == "position_embeddings" else value[:1]
            table.add_row(name, "×".join(map(str, value.shape)), *_stats(shown))
    return table


def cls_evolution_table(norms: list[float], cosines: list[float], entropies: list[float]) -> Table:
    """How the class token changes through the layers (see `vitlens.explain.class_token_path`)."""
    table = Table(title="class-token evolution (image 0)")
    for col in ("after", "‖x_cls‖", "cos to previous", "CLS attention entropy (mean over heads)"):
        table.add_column(col, justify="right")
    table.add_row("x0", f"{norms[0]:.4f}", "", "")
    for i, (norm, cos, ent) in enumerate(zip(norms[1:], cosines, entropies, strict=True)):
        table.add_row(f"layer {i}", f"{norm:.4f}", f"{cos:+.4f}", f"{ent:.3f} nats")
    return table


def probabilities_table(probabilities: Tensor, class_names: list[str] | None, top_k: int = 5) -> Table:
    """Top-k classes of one image with their probabilities."""
    table = Table(title="prediction")
    table.add_column("rank", justify="right")
    table.add_column("class")
    table.add_column("probability", justify="right")
    names = class_names or [str(i) for i in range(probabilities.numel())]
    for rank, (name, prob) in enumerate(top_classes(probabilities, names, top_k), start=1):
        table.add_row(str(rank), name, f"{prob:.4f}")
    return table


def eval_table(result: Any, title: str) -> list[Table]:
    """Accuracy and per-class precision / recall / F1, then the confusion matrix."""
    summary = Table(title=f"evaluation on {title}")
    for col in ("class", "precision", "recall", "F1", "support"):
        summary.add_column(col, justify="left" if col == "class" else "right")
    for row in result.per_class():
        summary.add_row(row["class"], f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}",
                        str(row["support"]))
    summary.add_row("[bold]accuracy", "", "", f"[bold]{result.accuracy:.4f}", str(int(result.confusion.sum())))
    confusion = Table(title="confusion matrix (rows: true, columns: predicted)")
    confusion.add_column("")
    for name in result.class_names:
        confusion.add_column(name, justify="right")
    for name, row in zip(result.class_names, result.confusion.tolist(), strict=True):
        confusion.add_row(name, *[str(v) if v else "·" for v in row])
    return [summary, confusion]


def predictions_table(predictions: list[Any]) -> Table:
    """One row per image: the top classes with their probabilities."""
    table = Table(title="predictions")
    table.add_column("image")
    table.add_column("class", style="bold")
    table.add_column("probability", justify="right")
    table.add_column("runners-up")
    for p in predictions:
        rest = ", ".join(f"{c} {q:.3f}" for c, q in p.top[1:])
        table.add_row(p.source, p.top[0][0], f"{p.top[0][1]:.4f}", rest)
    return table


def heads_table(explanation: Any) -> Table:
    """Per layer and head: the patches the class token attends to most, and how spread its attention is."""
    table = Table(title="where the class token looks (per layer and head)")
    for col in ("layer", "head", "top patches: index (row, col) weight", "to itself", "entropy"):
        table.add_column(col, justify="left" if col.startswith("top") else "right")
    for h in explanation.heads:
        tops = ", ".join(f"{i} {explanation.patch_position(i)} {w:.3f}" for i, w in h.top_patches)
        table.add_row(str(h.layer), str(h.head), tops, f"{h.to_cls:.3f}", f"{h.entropy:.2f} nats")
    return table


def attention_matrix_table(trace: Trace, layer: int, head: int, max_tokens: int = 24) -> Table:
    """The full attention matrix of one head (rows: queries, columns: keys), first ``max_tokens`` tokens."""
    attn = trace[f"layers.{layer}.attention"][0, head]
    t = min(attn.shape[-1], max_tokens)
    names = ["CLS"] + [str(i) for i in range(attn.shape[-1] - 1)]
    table = Table(title=f"layer {layer}, head {head}: attention weights (row attends to column)"
                        + (f", first {t} of {attn.shape[-1]} tokens" if t < attn.shape[-1] else ""))
    table.add_column("")
    for n in names[:t]:
        table.add_column(n, justify="right")
    for i in range(t):
        row = attn[i, :t].tolist()
        best = max(range(t), key=lambda j: row[j])
        table.add_row(names[i], *[(f"[bold]{v:.2f}[/]" if j == best else f"{v:.2f}") for j, v in enumerate(row)])
    return table


def bench_tables(report: dict[str, Any]) -> list[Table]:
    """A `vitlens.bench.run` report: images/s per config and model, then each vitlens row ÷ the best peer."""
    peak = report["matmul_peak_gflop_per_s"]
    table = Table(title=f"images/s; % of the matmul peak of the row's dtype (fp32 {peak['fp32']:.0f}, "
                        f"bf16 {peak['bf16']:.0f} GFLOP/s)")
    for col in ("config", "library", "batch", "train img/s", "infer img/s", "train % of peak", "infer % of peak"):
        table.add_column(col, justify="left" if col in ("config", "library") else "right")
    for r in report["results"]:
        if "skipped" in r:
            table.add_row(r["config"], r["library"], "", "not installed", "", "", "")
            continue
        table.add_row(r["config"], r["library"], str(r["batch_size"]), f"{r['train_images_per_s']:.0f}",
                      f"{r['inference_images_per_s']:.0f}", f"{100 * r['train_fraction_of_peak']:.0f} %",
                      f"{100 * r['inference_fraction_of_peak']:.0f} %")
    if not report["ratios"]:
        return [table]
    ratios = Table(title="vitlens ÷ best peer")
    for col in ("config", "measure", "vitlens", "best peer", "ratio"):
        ratios.add_column(col, justify="left" if col in ("config", "measure", "best peer") else "right")
    for r in report["ratios"]:
        ratios.add_row(r["config"], r["measure"].replace("_images_per_s", ""),
                       f"{r['vitlens']} {r['vitlens_value']:.0f}", f"{r['best_peer']} {r['best_peer_value']:.0f}",
                       f"{r['ratio']:.2f}×")
    return [table, ratios]


def deployment_table(report: dict[str, Any]) -> Table:
    """A `vitlens.bench.deployment` report: one row per inference runtime."""
    table = Table(title=f"inference runtimes on {report['images']} test images ({report['threads']} threads)")
    for col in ("runtime", "accuracy", "agrees with fp32", "max |Δp|", "img/s", "batch-1 p50", "batch-1 p99"):
        table.add_column(col, justify="left" if col == "runtime" else "right")
    for r in report["runtimes"]:
        table.add_row(r["runtime"], f"{r['accuracy']:.4f}", f"{100 * r['agreement_with_fp32']:.1f} %",
                      f"{r['max_probability_difference']:.1e}", f"{r['images_per_s']:.0f} (batch {r['batch_size']})",
                      f"{r['latency_ms_p50']:.2f} ms", f"{r['latency_ms_p99']:.2f} ms")
    return table
