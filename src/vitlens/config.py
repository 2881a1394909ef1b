"""`ViTConfig`: every knob of the Vision Transformer, a JSON round trip, and named presets.

A config is plain data: it says *what* the model is (shapes, block form, position embeddings,
pooling, head) and how its inputs are normalised, so weights always travel with their
preprocessing. The model is built from it with ``VisionTransformer(config)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK_FORMS = ("pre", "post")
ACTIVATIONS = ("gelu", "relu")
POSITION_KINDS = ("learned", "learned2d", "sincos2d", "none")
POOLINGS = ("cls", "mean")
WEIGHT_INITS = ("timm", "torch")
HEADS = ("linear", "mlp")


class ConfigError(ValueError):
    """A config value is invalid; the message says which field and what would work."""


def _pair(value: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    raise ConfigError(f"{name} must be an int or a pair of ints (height, width), got {value!r}")


@dataclass
class ViTConfig:
    """Hyper-parameters of a Vision Transformer.

    Shapes: an image (C, H, W) is cut into N = (H/P)·(W/P) patches of P×P pixels, each
    projected to ``dim`` (D); a class token makes T = N + 1 tokens; ``depth`` (L) encoder
    blocks of ``heads`` (h) heads of size d = D/h follow; the head maps D to ``num_classes``.
    """

    image_size: tuple[int, int] = (224, 224)
    patch_size: int = 16
    in_channels: int = 3
    num_classes: int = 1000
    class_names: list[str] | None = None
    dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    mlp_dim: int | None = None
    block: str = "pre"
    activation: str = "gelu"
    position: str = "learned"
    class_token: bool = True
    pool: str = "cls"
    head: str = "linear"
    head_hidden: list[int] = field(default_factory=list)
    dropout: float = 0.0
    attention_dropout: float = 0.0
    drop_path: float = 0.0
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6
    weight_init: str = "timm"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        self.image_size = _pair(self.image_size, "image_size")
        if self.mean is None:
            self.mean = (0.5,) * self.in_channels
        if self.std is None:
            self.std = (0.5,) * self.in_channels
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        self.head_hidden = [int(h) for h in self.head_hidden]
        if self.class_names is not None:
            self.class_names = [str(c) for c in self.class_names]
        self.validate()

    # ------------------------------------------------------------------ derived sizes
    @property
    def grid_size(self) -> tuple[int, int]:
        """Patches per column and per row: (H/P, W/P)."""
        return (self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size)

    @property
    def num_patches(self) -> int:
        """N = H·W / P²."""
        return self.grid_size[0] * self.grid_size[1]

    @property
    def num_prefix_tokens(self) -> int:
        return 1 if self.class_token else 0

    @property
    def num_tokens(self) -> int:
        """T = N + 1 with a class token, N without."""
        return self.num_patches + self.num_prefix_tokens

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def hidden_dim(self) -> int:
        """Width of the MLP inside each block (``mlp_dim`` if given, else ``mlp_ratio``·D)."""
        return self.mlp_dim if self.mlp_dim is not None else int(self.dim * self.mlp_ratio)

    @property
    def class_labels(self) -> list[str]:
        """The class names, or "0", "1", … when the config has none."""
        return self.class_names or [str(i) for i in range(self.num_classes)]

    @property
    def patch_dim(self) -> int:
        """Length of one flattened patch vector: C·P²."""
        return self.in_channels * self.patch_size**2

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise `ConfigError` naming the first invalid field and what would be valid."""

        def choice(name: str, allowed: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")

        for name in ("patch_size", "in_channels", "num_classes", "dim", "depth", "heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        h, w = self.image_size
        p = self.patch_size
        if h % p or w % p:
            raise ConfigError(
                f"image_size {h}×{w} is not divisible by patch_size {p}: "
                f"use multiples of {p} (e.g. {_nearest_sizes(h, w, p)}) "
                f"or a patch size dividing both ({_divisors_of_both(h, w)})"
            )
        if self.dim % self.heads:
            ok = [k for k in range(1, self.dim + 1) if self.dim % k == 0 and k <= 64]
            raise ConfigError(
                f"dim {self.dim} is not divisible by heads {self.heads}: each head gets dim/heads "
                f"features; heads that divide {self.dim}: {ok}"
            )
        if self.mlp_dim is not None and self.mlp_dim < 1:
            raise ConfigError(f"mlp_dim must be a positive integer or null, got {self.mlp_dim!r}")
        if self.mlp_dim is None and not self.mlp_ratio > 0:
            raise ConfigError(f"mlp_ratio must be > 0, got {self.mlp_ratio!r}")
        choice("block", BLOCK_FORMS)
        choice("activation", ACTIVATIONS)
        choice("position", POSITION_KINDS)
        choice("pool", POOLINGS)
        choice("head", HEADS)
        choice("weight_init", WEIGHT_INITS)
        if not self.class_token and self.pool == "cls":
            raise ConfigError("pool 'cls' needs class_token true; use pool 'mean' without a class token")
        if self.head == "linear" and self.head_hidden:
            raise ConfigError("head_hidden is only used with head 'mlp'; set head to 'mlp' or clear head_hidden")
        if self.head == "mlp" and not self.head_hidden:
            raise ConfigError("head 'mlp' needs head_hidden, e.g. [256]")
        if self.position == "sincos2d" and self.dim % 4:
            raise ConfigError(f"position 'sincos2d' needs dim divisible by 4, got dim {self.dim}")
        for name in ("dropout", "attention_dropout", "drop_path"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
        if not self.layer_norm_eps > 0:
            raise ConfigError(f"layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) != self.in_channels:
                raise ConfigError(
                    f"{name} has {len(value)} values but in_channels is {self.in_channels}: give one per channel"
                )
        if any(s <= 0 for s in self.std or ()):
            raise ConfigError(f"std values must be > 0, got {self.std}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ConfigError(
                f"class_names has {len(self.class_names)} names but num_classes is {self.num_classes}"
            )

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["image_size"] = list(self.image_size)
        data["mean"] = list(self.mean or ())
        data["std"] = list(self.std or ())
        return data

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ViTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> ViTConfig:
        """Read a config from a JSON file path or a JSON string."""
        text = str(path_or_text)
        source = "JSON text"
        if not text.lstrip().startswith("{"):
            path = Path(path_or_text)
            if not path.is_file():
                raise ConfigError(f"config file {path} does not exist")
            text, source = path.read_text(), str(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{source} is not valid JSON: {err}") from err
        if isinstance(data, dict) and isinstance(data.get("model"), dict):
            data = data["model"]  # a checkpoint's config.json nests the model config
        if not isinstance(data, dict):
            raise ConfigError(f"{source} must hold a JSON object of config fields")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> ViTConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _nearest_sizes(h: int, w: int, p: int) -> str:
    """The sizes nearest to h×w, rounding down and up, that are multiples of p."""
    down = (max(p, (h // p) * p), max(p, (w // p) * p))
    up = (math.ceil(h / p) * p, math.ceil(w / p) * p)
    return " or ".join(dict.fromkeys(f"{a}×{b}" for a, b in (down, up)))


def _divisors_of_both(h: int, w: int) -> str:
    g = math.gcd(h, w)
    return ", ".join(str(d) for d in range(1, g + 1) if g % d == 0)


# ---------------------------------------------------------------------- presets
IMAGENET_MEAN = (0.5, 0.5, 0.5)  # the original ViT / timm "augreg" checkpoints normalise to [-1, 1]
IMAGENET_STD = (0.5, 0.5, 0.5)
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)


def _imagenet(name: str, patch: int, dim: int, depth: int, heads: int) -> ViTConfig:
    return ViTConfig(
        name=name, image_size=(224, 224), patch_size=patch, in_channels=3, num_classes=1000,
        dim=dim, depth=depth, heads=heads, mlp_ratio=4.0, mean=IMAGENET_MEAN, std=IMAGENET_STD,
    )


def _mnist() -> ViTConfig:
    # The 28×28 digits resized to 30×30: 5×5 = 25 patches of 6×6 pixels; sized for two CPU cores
    # (see README, "The mnist preset").
    return ViTConfig(
        name="mnist", image_size=(30, 30), patch_size=6, in_channels=1, num_classes=10,
        class_names=[str(d) for d in range(10)], dim=64, depth=6, heads=4, mlp_ratio=2.0,
        weight_init="torch", mean=MNIST_MEAN, std=MNIST_STD,
    )


def _seed_toy() -> ViTConfig:
    # The study notes' worked example (seed 001): 6×6 grey image, 2×2 patches, D = 4, one post-norm
    # layer with a ReLU feed-forward 4 → 8 → 4, classes cat/dog/bird. The notes' pixels are in [0, 1]
    # and used as they are, so normalisation is the identity.
    return ViTConfig(
        name="seed_toy", image_size=(6, 6), patch_size=2, in_channels=1, num_classes=3,
        class_names=["cat", "dog", "bird"], dim=4, depth=1, heads=1, mlp_dim=8, block="post",
        activation="relu", mean=(0.0,), std=(1.0,), layer_norm_eps=1e-5,
    )


PRESETS = {
    "vit_tiny_patch16_224": lambda: _imagenet("vit_tiny_patch16_224", 16, 192, 12, 3),
    "vit_small_patch16_224": lambda: _imagenet("vit_small_patch16_224", 16, 384, 12, 6),
    "vit_base_patch16_224": lambda: _imagenet("vit_base_patch16_224", 16, 768, 12, 12),
    "vit_base_patch32_224": lambda: _imagenet("vit_base_patch32_224", 32, 768, 12, 12),
    "vit_large_patch16_224": lambda: _imagenet("vit_large_patch16_224", 16, 1024, 24, 16),
    "vit_huge_patch14_224": lambda: _imagenet("vit_huge_patch14_224", 14, 1280, 32, 16),
    "mnist": _mnist,
    "seed_toy": _seed_toy,
}


def preset(name: str, **overrides: Any) -> ViTConfig:
    """A named preset (see `PRESETS`), optionally with some fields changed."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    config = PRESETS[name]()
    return config.replace(**overrides) if overrides else config


def load_config(spec: str | Path) -> ViTConfig:
    """A config from a preset name, a JSON file, or a checkpoint folder holding ``config.json``."""
    text = str(spec)
    if text in PRESETS:
        return preset(text)
    path = Path(spec)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"{path} is a folder without config.json: give a checkpoint folder, a JSON file or a preset"
            )
        return ViTConfig.from_json(path / "config.json")
    if path.is_file():
        return ViTConfig.from_json(path)
    raise ConfigError(f"{text!r} is neither a preset ({', '.join(PRESETS)}), nor a JSON file, nor a checkpoint folder")
