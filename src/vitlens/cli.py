"""The ``vitlens`` command: thin wrappers that parse arguments and call the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console

from vitlens.config import ConfigError, ViTConfig, load_config
from vitlens.info import model_info
from vitlens.model.vit import InputError, VisionTransformer
from vitlens.preprocess import ImageLoadError, load_image
from vitlens.tables import cls_evolution_table, info_tables, probabilities_table, trace_table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="vitlens: a Vision Transformer you can see through.")
console = Console()
USER_ERRORS = (ConfigError, InputError, ImageLoadError, FileNotFoundError, ValueError)


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


def _example_image(config: ViTConfig) -> torch.Tensor:
    """A deterministic stand-in image when none is given: a smooth pattern of the config's size."""
    h, w = config.image_size
    y, x = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    img = torch.exp(-((x**2 + y**2 - 0.45) ** 2) / 0.02)  # a ring, like a hand-drawn 0
    return ((img - 0.5) / 0.5).expand(config.in_channels, h, w)


@app.command()
def trace(
    model: Annotated[str, typer.Argument(help="preset name, config JSON file, or checkpoint folder")] = "mnist",
    image: Annotated[Path | None, typer.Option("--image", "-i", help="image file (any PIL format)")] = None,
    seed: Annotated[int, typer.Option(help="seed for a freshly initialised model")] = 0,
    layers: Annotated[str | None, typer.Option(help="layers to list, e.g. '0,5' (default: all)")] = None,
) -> None:
    """Run one traced forward pass and list every intermediate, the class token's path and the prediction."""
    try:
        config = load_config(model)
        torch.manual_seed(seed)
        net = VisionTransformer(config).eval()
        pixels = load_image(image, config) if image else _example_image(config)
        chosen = [int(s) for s in layers.split(",")] if layers else None
        with torch.inference_mode():
            result = net.trace(pixels[None])
    except USER_ERRORS as err:
        raise fail(err) from err
    source = str(image) if image else "a generated ring image"
    console.print(f"[bold]{config.name or model}[/] on {source} — weights: random init (seed {seed})")
    console.print(trace_table(result, chosen))
    console.print(cls_evolution_table(result))
    console.print(probabilities_table(result["probabilities"][0], config.class_names))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
