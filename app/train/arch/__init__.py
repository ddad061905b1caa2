"""Model families. Each lives in one file with a config dataclass, the module, and a registry of named configs."""

from .vit import VisionTransformer, ViTConfig, create_model, get_config, list_configs, register_config

__all__ = ["ViTConfig", "VisionTransformer", "create_model", "get_config", "list_configs", "register_config"]
