"""The ``vitlens`` command: thin wrappers that parse arguments and call the library."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console

from vitlens.checkpoint import CheckpointError
from vitlens.config import ConfigError, ViTConfig, load_config
from vitlens.data.errors import DataError
from vitlens.info import model_info
from vitlens.interop.common import InteropError
from vitlens.model.vit import InputError, VisionTransformer
from vitlens.preprocess import ImageLoadError, load_image, normalise, unstandardise
from vitlens.tables import (
    cls_evolution_table,
    eval_table,
    info_tables,
    predictions_table,
    probabilities_table,
    trace_table,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help="vitlens: a Vision Transformer you can see through.")
console = Console()
data_app = typer.Typer(no_args_is_help=True, help="Data sets: explicit downloads (nothing downloads by default).")
app.add_typer(data_app, name="data")
USER_ERRORS = (ConfigError, InputError, ImageLoadError, DataError, CheckpointError, InteropError, FileNotFoundError,
               ValueError)


def fail(err: Exception) -> typer.Exit:
    console.print(f"[bold red]error:[/] {err}")
    return typer.Exit(2)


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="preset name, config JSON file, or checkpoint folder")] = "mnist",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="batch for the attention memory figure")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Parameters per part, FLOPs per image, tokens, attention sizes and their memory."""
    try:
        result = model_info(load_config(model), batch_size)
    except USER_ERRORS as err:
        raise fail(err) from err
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    for table in info_tables(result):
        console.print(table)


def _bundled_digit(config: ViTConfig, index: int) -> tuple[torch.Tensor, str]:
    """Test digit ``index`` of the bundled MNIST sample, resized to ``config``'s input size and normalised."""
    from vitlens.data.datasets import load_data

    if config.in_channels != 1:
        raise ConfigError(f"the bundled digits are grey; {config.name or 'this model'} takes "
                          f"{config.in_channels} channels: pass --image")
    digit = load_data("mnist5k")["test"].subset([index]).resized(config.image_size)  # resize only this one
    return normalise(digit.images[0], config), f"bundled test digit #{index} (a {int(digit.labels[0])})"


def _model_for(spec: str, seed: int) -> tuple[VisionTransformer, str]:
    """A trained model from a checkpoint folder, or a freshly initialised one from a preset/config."""
    from vitlens.inference import load

    path = Path(spec)
    if path.is_dir() and (path / "model.safetensors").is_file():
        return load(path), f"trained weights from {path}"
    torch.manual_seed(seed)
    return VisionTransformer(load_config(spec)).eval(), f"random init (seed {seed})"


@app.command()
def trace(
    model: Annotated[str, typer.Argument(help="checkpoint folder, preset name, or config JSON file")] = "mnist",
    image: Annotated[Path | None, typer.Option("--image", "-i", help="image file (any PIL format)")] = None,
    digit: Annotated[int, typer.Option(help="bundled test digit to use when no --image is given")] = 0,
    seed: Annotated[int, typer.Option(help="seed for a freshly initialised model")] = 0,
    layers: Annotated[str | None, typer.Option(help="layers to list, e.g. '0,5' (default: all)")] = None,
) -> None:
    """Run one traced forward pass and list every intermediate, the class token's path and the prediction."""
    try:
        net, weights = _model_for(model, seed)
        config = net.config
        if image:
            pixels, source = load_image(image, config), str(image)
        else:
            pixels, source = _bundled_digit(config, digit)
        chosen = [int(s) for s in layers.split(",")] if layers else None
        with torch.inference_mode():
            result = net.trace(pixels[None])
    except USER_ERRORS as err:
        raise fail(err) from err
    console.print(f"[bold]{config.name or model}[/] on {source} — weights: {weights}")
    console.print(trace_table(result, chosen))
    if config.class_token:
        from vitlens.explain import class_token_path

        console.print(cls_evolution_table(*class_token_path(result)))
    console.print(probabilities_table(result["probabilities"][0], config.class_names))


@app.command()
def train(
    model: Annotated[str, typer.Option("--model", "-m", help="preset name or config JSON file")] = "mnist",
    data: Annotated[str, typer.Option(help="mnist5k (bundled), mnist:DIR, fashion-mnist:DIR, cifar10:PATH, "
                                           "folder:DIR or a path")] = "mnist5k",
    out: Annotated[Path, typer.Option("--out", "-o", help="checkpoint folder to write")] = Path("runs/mnist"),
    epochs: Annotated[int | None, typer.Option(help="epochs (default 60)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="batch size (default 64)")] = None,
    lr: Annotated[float | None, typer.Option(help="peak learning rate (default 2e-3)")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="AdamW weight decay (default 0.05)")] = None,
    clip_grad: Annotated[float | None, typer.Option(help="clip the gradient norm to this (default 0: off)")] = None,
    augment: Annotated[str | None, typer.Option(help="auto | digits | crop_flip | none")] = None,
    precision: Annotated[str | None, typer.Option(help="auto | fp32 | bf16")] = None,
    ema: Annotated[float | None, typer.Option(help="decay of the moving average of the weights that is evaluated "
                                                   "and saved (default 0.999; 0: save the trained weights)")] = None,
    compile: Annotated[bool | None, typer.Option("--compile/--no-compile", help="torch.compile the model (default: "
                                                 "on for runs of 5,000+ steps where a C++ compiler or GPU is found)")]
    = None,
    grad_checkpointing: Annotated[bool, typer.Option("--grad-checkpointing", help="recompute blocks in backward: "
                                                     "less activation memory for big models")] = False,
    seed: Annotated[int | None, typer.Option(help="random seed (default 0)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out from its last checkpoint")]
    = False,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1, … (default: cuda if available)")] = None,
) -> None:
    """Train a ViT (default: the mnist preset on the bundled 4,000/1,000 MNIST split) and save checkpoints."""
    from dataclasses import replace

    from vitlens.training import TrainConfig
    from vitlens.training import train as run_training

    options = dict(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, clip_grad=clip_grad,
                   augment=augment, precision=precision, ema=ema, seed=seed)
    given: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    if compile is not None:
        given["compile"] = "on" if compile else "off"
    if grad_checkpointing:
        given["grad_checkpointing"] = True
    tc = replace(TrainConfig(), **given) if given else None  # None: defaults, or the run's own on --resume
    try:
        result = run_training(model, None if resume and data == "mnist5k" else data, out, tc, resume=resume,
                              device=device)
    except USER_ERRORS as err:
        raise fail(err) from err
    final = result.final
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        raise typer.Exit(130 if result.interrupted else 0)
    if result.interrupted:
        console.print(f"[yellow]stopped[/] at step {final.get('step', '?')}; checkpoint saved in {out}. "
                      f"Continue with: vitlens train --resume --out {out}")
        raise typer.Exit(130)
    console.print(f"[bold green]test accuracy {final['test_accuracy']:.4f}[/] on {len(result.history)} epochs "
                  f"({final['time_s']:.0f} s). Checkpoint: {out}/ (config.json, model.safetensors, metrics.jsonl, "
                  f"curves.png, confusion.png)")


def _checkpoint_data(checkpoint: Path, net: VisionTransformer, data: str | None, split: str) -> tuple[str, Any]:
    """(spec, data set) to evaluate a checkpoint on: ``data``, or the data it was trained on."""
    from vitlens.checkpoint import read_config
    from vitlens.data.datasets import load_data

    spec = data or read_config(checkpoint).get("data", "mnist5k")
    if spec == "in-memory":
        raise DataError(f"{checkpoint} was trained on in-memory data: pass --data")
    dataset = load_data(spec, net.config.image_size, net.config.in_channels)[split]
    if dataset.class_names != net.config.class_names:
        raise DataError(f"the classes of {spec} ({dataset.class_names}) differ from the model's "
                        f"({net.config.class_names})")
    return spec, dataset


@app.command("eval")
def evaluate_command(
    checkpoint: Annotated[Path, typer.Argument(help="checkpoint folder")],
    data: Annotated[str | None, typer.Option(help="data spec (default: the data the model was trained on)")] = None,
    split: Annotated[str, typer.Option(help="train or test")] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    plot: Annotated[Path | None, typer.Option(help="write the confusion matrix as PNG here")] = None,
) -> None:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix of a checkpoint."""
    from vitlens.inference import load
    from vitlens.training import evaluate

    try:
        if split not in ("train", "test"):
            raise ValueError(f"--split must be train or test, got {split!r}")
        net = load(checkpoint)
        spec, dataset = _checkpoint_data(checkpoint, net, data, split)
        result = evaluate(net, dataset)
    except USER_ERRORS as err:
        raise fail(err) from err
    if plot:
        from vitlens.viz import plot_confusion, save_figure

        save_figure(plot_confusion(result.confusion, result.class_names), plot)
    if as_json:
        print(json.dumps(result.as_dict() | {"data": spec, "split": split, "images": len(dataset)}, indent=2))
        return
    for table in eval_table(result, f"{spec} {split} ({len(dataset)} images)"):
        console.print(table)


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="checkpoint folder")],
    images: Annotated[list[Path], typer.Argument(help="image files or folders")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="classes to show per image")] = 3,
    invert: Annotated[str, typer.Option(help="auto | yes | no: invert grey images (auto: when the border is bright)")]
    = "auto",
    fit: Annotated[str, typer.Option(help="auto (MNIST-style digit centring for grey models) | resize")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Top-k classes and probabilities for each image (any PIL format, mode and size)."""
    from vitlens.inference import predict as run_predict

    choice: str | bool = {"yes": True, "no": False}.get(invert, invert)
    try:
        results = run_predict(checkpoint, images, top_k=top_k, invert=choice, fit=fit)
    except USER_ERRORS as err:
        raise fail(err) from err
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        console.print(predictions_table(results))


@app.command()
def explain(
    checkpoint: Annotated[Path | None, typer.Argument(help="checkpoint folder (omit with --walkthrough)")] = None,
    image: Annotated[Path | None, typer.Argument(help="image file (default: a bundled test digit)")] = None,
    walkthrough: Annotated[bool, typer.Option("--walkthrough", help="the study notes' 6×6 example, step by step")]
    = False,
    model: Annotated[bool, typer.Option("--model", help="with --walkthrough: computed by the seed_toy model")] = False,
    fmt: Annotated[str, typer.Option("--format", help="rich | markdown | json")] = "rich",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write markdown/json here")] = None,
    digit: Annotated[int, typer.Option(help="bundled test digit when no image is given")] = 0,
    layer: Annotated[int | None, typer.Option(help="zoom into this layer's attention (with --head)")] = None,
    head: Annotated[int | None, typer.Option(help="zoom into this head's full attention matrix")] = None,
    save_dir: Annotated[Path | None, typer.Option("--save-dir", help="write the PNG figures here")] = None,
) -> None:
    """See through a ViT: the notes' worked example (--walkthrough), or every step of a real prediction."""
    if fmt not in ("rich", "markdown", "json"):
        raise fail(ValueError(f"--format must be rich, markdown or json, got {fmt!r}"))
    if walkthrough:
        from vitlens import walkthrough as wt

        steps = wt.model_steps() if model else wt.walkthrough()
        if fmt == "rich":
            for table in wt.rich_tables(steps, model=model):
                console.print(table)
                console.print()
            if not model:
                for name, labels in wt.summary(steps).items():
                    console.print(f"[bold]{name}[/]: {len(labels)}")
            return
        text = wt.markdown(steps, model=model) if fmt == "markdown" else json.dumps(wt.as_json(steps), indent=2)
        if output:
            output.write_text(text)
            console.print(f"wrote {output}")
        else:
            print(text)
        return
    if checkpoint is None:
        raise fail(ValueError("give a checkpoint folder (and optionally an image), or --walkthrough"))
    from vitlens.explain import explain as run_explain
    from vitlens.inference import load
    from vitlens.tables import attention_matrix_table, heads_table

    try:
        if (layer is None) != (head is None):
            raise ValueError("--layer and --head go together")
        net = load(checkpoint)
        if layer is not None and head is not None and not (0 <= layer < net.config.depth and
                                                           0 <= head < net.config.heads):
            raise ValueError(f"--layer must be in 0…{net.config.depth - 1} and --head in 0…{net.config.heads - 1}")
        pixels, source = (load_image(image, net.config), str(image)) if image else _bundled_digit(net.config, digit)
        result = run_explain(net, pixels)
    except USER_ERRORS as err:
        raise fail(err) from err
    console.print(f"[bold]{checkpoint}[/] on {source}: prediction [bold]{result.top(1)[0][0]}[/] "
                  f"({result.top(1)[0][1]:.3f}); {result.grid[0]}×{result.grid[1]} patches of "
                  f"{net.config.patch_size}×{net.config.patch_size}")
    console.print(heads_table(result))
    console.print(cls_evolution_table(result.cls_norms, result.cls_cosines, result.cls_entropies))
    console.print(probabilities_table(result.probabilities, result.class_names))
    if layer is not None and head is not None:
        console.print(attention_matrix_table(result.trace, layer, head))
    if save_dir:
        from vitlens.viz import (
            plot_cls_attention,
            plot_cls_evolution,
            plot_patch_grid,
            plot_probabilities,
            plot_rollout,
            save_figure,
        )

        shown = unstandardise(pixels, net.config)
        figures = {
            "patch_grid.png": plot_patch_grid(shown, net.config.patch_size),
            "cls_attention.png": plot_cls_attention(shown, result.cls_attention, result.grid),
            "rollout.png": plot_rollout(shown, result.rollout, result.grid, "attention rollout (mean over heads)"),
            "cls_evolution.png": plot_cls_evolution(result.cls_norms, result.cls_cosines),
            "probabilities.png": plot_probabilities(result.probabilities, result.class_names),
        }
        for name, fig in figures.items():
            save_figure(fig, save_dir / name)
        console.print(f"wrote {', '.join(figures)} to {save_dir}")


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="checkpoint folder")],
    fmt: Annotated[str, typer.Option("--format", help="onnx")] = "onnx",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default: CHECKPOINT/model.onnx)")]
    = None,
) -> None:
    """Export a checkpoint (ONNX with a dynamic batch axis, checked against onnxruntime)."""
    from vitlens.inference import load
    from vitlens.interop.onnx import export_onnx

    if fmt != "onnx":
        raise fail(ValueError(f"--format must be onnx, got {fmt!r}"))
    target = output or checkpoint / "model.onnx"
    try:
        net = load(checkpoint)
        difference = export_onnx(net, target)
    except USER_ERRORS as err:
        raise fail(err) from err
    check = f"onnxruntime matches PyTorch (max |Δ| {difference:.1e})" if difference is not None else \
        "onnxruntime not installed: not checked"
    console.print(f"wrote {target} (input images: batch×{net.config.in_channels}×{net.config.image_size[0]}×"
                  f"{net.config.image_size[1]}, output logits: batch×{net.config.num_classes}); {check}")


@app.command()
def bench(
    configs: Annotated[str | None, typer.Option(help="comma-separated: mnist, mnist_patch4, vit_tiny_patch16_224, "
                                                     "vit_small_patch16_224 (default: all)")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="also transformers and vit-pytorch, interleaved")] = False,
    batch_size: Annotated[int | None, typer.Option(help="batch size for every config (default: per config)")] = None,
    rounds: Annotated[int, typer.Option(help="interleaved rounds; the best of each library counts")] = 3,
    min_time: Annotated[float, typer.Option(help="seconds per measurement")] = 1.0,
    precision: Annotated[str, typer.Option(help="fp32 | bf16 | auto: bf16 adds a vitlens bf16 row (training "
                                                "under autocast, inference with bf16 weights; auto: where the "
                                                "CPU has AMX bf16 units)")] = "auto",
    compile: Annotated[bool, typer.Option("--compile", help="also torch.compile every library's model")] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="write the report here")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="instead: compare inference runtimes (PyTorch fp32, "
                                                         "bf16 weights, dynamic int8, onnxruntime) for this "
                                                         "trained model")] = None,
) -> None:
    """Training-step and inference images/s, GFLOP/s and fraction of a matmul peak; ratios with --compare.
    With --checkpoint: accuracy, images/s and batch-1 latency of each inference runtime."""
    from vitlens.bench import deployment
    from vitlens.bench import run as run_bench
    from vitlens.tables import bench_tables, deployment_table

    try:
        if checkpoint is not None:
            from vitlens.inference import load
            from vitlens.preprocess import standardise
            from vitlens.training import to_unit

            net = load(checkpoint)
            _, dataset = _checkpoint_data(checkpoint, net, None, "test")
            images = standardise(to_unit(dataset.images, torch.device("cpu")), net.config)
            report = deployment(net, images, dataset.labels, batch_size or 128, min_time=min_time)
            tables = [deployment_table(report)]
        else:
            report = run_bench(configs.split(",") if configs else None, compare, batch_size, rounds, min_time,
                               precision, compile)
            tables = bench_tables(report)
    except USER_ERRORS as err:
        raise fail(err) from err
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n")
    for table in tables:
        console.print(table)


@app.command()
def serve(
    checkpoint: Annotated[Path, typer.Argument(help="checkpoint folder")],
    host: Annotated[str, typer.Option(help="address to bind (127.0.0.1: this machine only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    max_batch: Annotated[int, typer.Option(help="largest micro-batch; 1 turns micro-batching off")] = 64,
    max_wait_ms: Annotated[float, typer.Option(help="how long a batch waits for more requests, ms")] = 2.0,
    max_body_mb: Annotated[float, typer.Option(help="largest request body, MiB")] = 10.0,
    max_pixels: Annotated[int, typer.Option(help="largest image, pixels (decompression-bomb guard)")] = 25_000_000,
) -> None:
    """HTTP API (/v1/predict, /v1/explain, /v1/model, /docs) and a web page to draw digits on, at /."""
    try:
        from vitlens.serve import Limits
        from vitlens.serve import serve as run_server
    except ImportError as err:
        raise fail(ImportError(f"{err.name} is not installed: pip install 'vitlens[serve]'")) from err
    limits = Limits(max_body_bytes=int(max_body_mb * 1024 * 1024), max_pixels=max_pixels)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"serving {checkpoint} at http://{shown}:{port}/ (API docs at /docs; Ctrl-C stops)")
    try:
        run_server(checkpoint, host, port, max_batch, max_wait_ms, limits)
    except USER_ERRORS as err:
        raise fail(err) from err


@data_app.command("download")
def data_download(
    name: Annotated[str, typer.Argument(help="mnist | fashion-mnist | cifar10")],
    folder: Annotated[Path | None, typer.Option("--dir", help="target folder (default: data/NAME)")] = None,
    base_url: Annotated[str | None, typer.Option(help="a mirror holding the same files")] = None,
    retries: Annotated[int, typer.Option(help="tries per file")] = 3,
) -> None:
    """Download a standard data set with size and sha256 checks (then train with --data NAME:DIR)."""
    from vitlens.data.download import download

    target = folder or Path("data") / name
    try:
        paths = download(name, target, base_url=base_url, retries=retries)
    except USER_ERRORS as err:
        raise fail(err) from err
    console.print(f"{len(paths)} file(s) verified in {target}. Train with: vitlens train --data {name}:{target}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
