"""Request-body JSON parsing that turns every malformed body into INVALID_ARGUMENT (HTTP 400).

Python's ``json`` recurses once per nesting level, and so do the converters after it; a body nested
100,000 levels deep would raise RecursionError deep in the handler. No tensor has more than
:data:`MAX_DEPTH` dimensions that numpy can build (64) plus the request's own object levels, so a
deeper body is refused before parsing, by a vectorised scan of its brackets (outside strings).
"""

from __future__ import annotations

import json
import re

import numpy as np

from serving.errors import invalid

MAX_DEPTH = 100  # nesting levels of arrays/objects a request body may have
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = np.zeros(256, np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1


def nesting_depth(raw: bytes) -> int:
    """The deepest array/object nesting of a JSON text (brackets inside strings do not count)."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return int(np.cumsum(_STEP[np.frombuffer(brackets, np.uint8)], dtype=np.int64).max())


def loads(raw: bytes, max_depth: int = MAX_DEPTH):
    """Parse a request body; any failure (syntax, encoding, depth, huge integers) -> invalid()."""
    if raw.count(b"[") + raw.count(b"{") > max_depth:  # cheap test first: most bodies are shallow
        depth = nesting_depth(raw)
        if depth > max_depth:
            raise invalid(f"JSON Parse error: nesting depth {depth} exceeds the limit of {max_depth}")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, int digits
        raise invalid(f"JSON Parse error: {err}") from None


def encode_str(value: str) -> bytes:
    """A JSON string as UTF-8 bytes; a lone surrogate escape (``"\\ud800"``) is invalid input."""
    try:
        return value.encode()
    except UnicodeEncodeError as err:
        raise invalid(f"JSON Value: string is not valid Unicode ({err.reason})") from None
