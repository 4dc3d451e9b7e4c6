"""The torch backend: lowering to ``torch.nn`` modules and the torch training steps."""

from .module import build_module, export_state, load_state

__all__ = ["build_module", "export_state", "load_state"]
