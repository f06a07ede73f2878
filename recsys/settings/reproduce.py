"""``recsys reproduce`` settings, one field per flag (``reproduce:`` in a config file)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.typed import setting

ALLOWABLE = ("config", "data", "code", "libraries", "devices", "workers", "export")  # reproduce.check.KINDS


@dataclass(frozen=True)
class ReproduceSettings:
    """Rebuild an export from its fingerprint and config, and say whether it came out bit for bit."""

    data: str = setting("", "directory with feature_spec.json: the data the export was trained on (required)")
    output: str = setting("", "directory for the rebuild and its certificate (default: a new "
                              "reproduce-<version>-<time> directory under the current one)")
    check_only: bool = setting(False, "only check the environment and the data against the fingerprint")
    allow: tuple[str, ...] = setting((), "go on despite differences of these kinds: " + ",".join(ALLOWABLE))
    force: bool = setting(False, "go on despite any difference")
    parent: str = setting("", "the warm-start parent (run dir or export): its weights digest must be the "
                              "recorded parent's (default: the recorded parent path)")
    workers: int = setting(0, "workers to rebuild on (0: the recorded count; another count is a difference)")
    draws: int = setting(1000, "bootstrap draws for the PD intervals when the rebuild differs")
    flip_threshold: float = setting(0.5, "decision threshold of the flip rate")

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("data is required (the --output directory of `recsys preprocess`)")
        unknown = sorted(set(self.allow) - set(ALLOWABLE))
        if unknown:
            raise ValueError(f"allow: unknown kind(s) {unknown}; choose from {', '.join(ALLOWABLE)}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if self.draws < 2:
            raise ValueError(f"draws must be >= 2, got {self.draws}")
