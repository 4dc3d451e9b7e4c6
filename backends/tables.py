"""Assembling a backend's per-op lowering table from its category modules."""

from types import MappingProxyType


def merge_lowerings(backend: str, *tables: dict) -> MappingProxyType:
    """One read-only table; an op lowered twice is an error, never a silent override."""
    merged = {}
    for table in tables:
        for name, lowering in table.items():
            if name in merged:
                raise ValueError(f"{backend} lowering for '{name}' is defined twice")
            merged[name] = lowering
    return MappingProxyType(merged)
