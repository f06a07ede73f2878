"""Request-body JSON parsing that turns every malformed body into INVALID_ARGUMENT (HTTP 400).

Python's ``json`` recurses once per nesting level, and so do the converters after it; a body nested
100,000 levels deep would raise RecursionError deep in the handler. No tensor has more than
:data:`MAX_DEPTH` dimensions that numpy can build (64) plus the request's own object levels, so a
deeper body is refused before parsing, by a vectorised scan of its brackets (outside strings). So is
a body holding more values than the request cap (:func:`count_values`): parsed, each would be a
Python object about fifteen times its size in the body.
"""

from __future__ import annotations

import json
import re

import grpc
import numpy as np

from serving.errors import ServingError, invalid

MAX_DEPTH = 100  # nesting levels of arrays/objects a request body may have
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = np.zeros(256, np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1
_QUOTE, _COMMA = ord('"'), ord(",")
_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[list(b" \t\r\n")] = True
_EMPTY_PAIRS = ((ord("["), ord("]")), (ord("{"), ord("}")))


def nesting_depth(raw: bytes) -> int:
    """The deepest array/object nesting of a JSON text (brackets inside strings do not count)."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return int(np.cumsum(_STEP[np.frombuffer(brackets, np.uint8)], dtype=np.int64).max())


def count_values(raw: bytes, chunk: int = 1 << 18) -> int:
    """The scalar values (numbers, strings, true/false/null) of a JSON text, object keys not counted.

    Without parsing: every array or object with n children has n - 1 commas, and every container but
    the outermost is a child, so the values are the commas outside strings + 1 - the empty containers.
    Exact for valid JSON (for a top-level scalar or invalid text, an estimate). Vectorised, a chunk at a
    time, so a 64 MiB body takes a fraction of a second and a few MiB beyond itself.
    """
    if b"\\" in raw:  # escapes: a \\ pair is one character, then every \" is a quote inside a string
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    data = np.frombuffer(raw, np.uint8)
    commas = empties = 0
    inside = 0  # 1 while in a string, carried over chunk boundaries
    last = 0  # the last character outside strings and whitespace of the previous chunk
    for begin in range(0, data.size, chunk):
        part = data[begin : begin + chunk]
        # a character is inside a string when an odd number of quotes precede it (parity: uint8 is enough)
        parity = (np.cumsum(part == _QUOTE, dtype=np.uint8) + inside) & 1
        inside = int(parity[-1])
        outside = part[parity == 0]  # a string's closing quote stays: it is a value between brackets
        commas += int(np.count_nonzero(outside == _COMMA))
        kept = outside[~_WHITESPACE[outside]]
        if kept.size:
            previous = np.concatenate((np.array([last], np.uint8), kept[:-1]))
            for opening, closing in _EMPTY_PAIRS:
                empties += int(np.count_nonzero((previous == opening) & (kept == closing)))
            last = int(kept[-1])
    return commas + 1 - empties


def loads(raw: bytes, max_depth: int = MAX_DEPTH, max_values: int | None = None):
    """Parse a request body; any failure (syntax, encoding, depth, huge integers) -> invalid().

    ``max_values``: a body holding more scalar values than this is refused (RESOURCE_EXHAUSTED, HTTP
    413) from a count of its commas, before the parser builds one Python object per value (~30 bytes
    each, against 2 in the body).
    """
    if max_values is not None and raw.count(b",") >= max_values:  # cheap test first: commas bound it
        values = count_values(raw)
        if values > max_values:
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the request body holds {values} values, more than the limit of {max_values} "
                "(--max_request_elements); send fewer rows per request",
                http_status=413,
            )
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
