"""vitlens — a Vision Transformer you can train, use and see through."""

from vitlens.config import PRESETS, ConfigError, ViTConfig, preset
from vitlens.model import InputError, Trace, VisionTransformer

__version__ = "0.1.0"


def create_model(name_or_config: str | ViTConfig, **overrides: object) -> VisionTransformer:
    """Build a model from a preset name (``"mnist"``, ``"vit_base_patch16_224"``, …) or a config."""
    if isinstance(name_or_config, ViTConfig):
        config = name_or_config.replace(**overrides) if overrides else name_or_config
    else:
        config = preset(name_or_config, **overrides)
    return VisionTransformer(config)


from vitlens.inference import load, predict  # noqa: E402
from vitlens.training import TrainConfig, evaluate, train  # noqa: E402

__all__ = [
    "PRESETS", "ConfigError", "InputError", "Trace", "TrainConfig", "ViTConfig", "VisionTransformer", "__version__",
    "create_model", "evaluate", "load", "predict", "preset", "train",
]
