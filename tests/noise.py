"""The start-up chatter a normal ``recsys`` run must not print, as regexes over its output lines."""

from __future__ import annotations

import re

# absl's prefix ("I1201 21:23:26.502710 1405... preprocess.py:172] ..."), on third-party lines and on
# our own messages alike (recsys.quiet prints ours as plain text).
PATTERNS = [
    re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] tensorflow/"),  # TF < 2.16 C++ lines
    re.compile(r"^[IW]\d{4} [\d:.]+ +\d+ [\w./+-]+:\d+\] "),  # absl format
    re.compile(r"cuInit"),
    re.compile(r"oneDNN custom operations"),
    re.compile(r"apitools"),
    re.compile(r"Unable to register cu"),
    re.compile(r"^WARNING: All log messages before absl::InitializeLog"),
    re.compile(r"Tensor RefCount not reliable"),  # printed per restored variable on a resume
]


def noise_lines(text: str) -> list[str]:
    """The lines of ``text`` that match a noise pattern (empty for a quiet run)."""
    return [line for line in text.splitlines() if any(p.search(line) for p in PATTERNS)]
