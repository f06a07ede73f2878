"""Kubernetes memory quantities ("16Gi", "512M", "1.5e9") to bytes, and bytes to a readable string."""

from __future__ import annotations

import re

_SUFFIX = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
}  # fmt: skip
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([kMGTP]i?|Ki)?\s*$")


def parse_quantity(text: str | int | float) -> int:
    """Bytes of a Kubernetes memory quantity (the syntax of ``recsys submit --memory``)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return int(text)
    match = _QUANTITY.match(str(text))
    if not match or (match.group(2) or "") not in _SUFFIX:
        raise ValueError(f"not a memory quantity: {text!r} (e.g. 16Gi, 512Mi, 8G, 1000000000)")
    return int(float(match.group(1)) * _SUFFIX[match.group(2) or ""])


def format_bytes(n: float) -> str:
    """Binary units with three significant digits: 1536 -> '1.50 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
