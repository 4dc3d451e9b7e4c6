"""The JAX backend: lowering to a Flax linen module, weight conversion, jit-compiled steps."""

from .model import FlaxModel, state_from_variables, variables_from_state

__all__ = ["FlaxModel", "state_from_variables", "variables_from_state"]
