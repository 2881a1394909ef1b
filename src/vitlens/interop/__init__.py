"""Weights in other libraries' layouts: Hugging Face transformers and timm (state-dict renames)."""

from vitlens.interop.hf import config_from_hf, config_to_hf, from_hf_state_dict, load_hf, to_hf_state_dict
from vitlens.interop.timm import from_timm_state_dict, load_timm, to_timm_state_dict

__all__ = [
    "config_from_hf", "config_to_hf", "from_hf_state_dict", "from_timm_state_dict", "load_hf", "load_timm",
    "to_hf_state_dict", "to_timm_state_dict",
]
