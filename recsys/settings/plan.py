"""``recsys plan`` settings: cluster shape, memory budget, what-if id counts (``plan:`` in a config file)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.typed import setting
from recsys.planning.quantity import parse_quantity


@dataclass(frozen=True)
class PlanSettings:
    """What the embedding cost model is asked about; the experiment comes from the same ``--config``."""

    workers: int = setting(1, "MultiWorkerMirroredStrategy workers (every one holds every table)")
    replicas_per_worker: int = setting(1, "replicas per worker (GPUs per worker; 1 on CPU)")
    memory: str = setting("", "memory of one worker, as `recsys submit --memory`: 16Gi, 512Mi, 8G ('': no "
                          "budget, never refuses)")
    strict: bool = setting(True, "exit 1 when a worker's --memory would be exceeded (else only warn)")
    json: bool = setting(False, "print the plan as JSON instead of a table")
    num_ids: tuple[str, ...] = setting((), "what-if: FEATURE=N gives a categorical feature N ids (as hashing "
                                       "to N buckets would); repeatable", multi=True)
    num_ids_file: str = setting("", "what-if: YAML mapping FEATURE: N (e.g. a data set's full "
                                "cardinalities, configs/plans/criteo_kaggle_cardinality.yaml)")
    max_ids: int = setting(0, "what-if: cap every categorical feature at N ids (hash to N buckets; 0: no "
                           "cap)")

    def __post_init__(self) -> None:
        for name in ("workers", "replicas_per_worker"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_ids < 0:
            raise ValueError(f"max_ids must be >= 0, got {self.max_ids}")
        if self.memory:
            try:
                parse_quantity(self.memory)
            except ValueError as err:
                raise ValueError(f"memory: {err}") from None
        for item in self.num_ids:
            name, sep, value = item.partition("=")
            if not sep or not name.strip() or not value.strip().isdigit():
                raise ValueError(f"num_ids: {item!r} is not FEATURE=N")

    @property
    def memory_bytes(self) -> int:
        """The worker's memory budget in bytes (0: none)."""
        return parse_quantity(self.memory) if self.memory else 0

    def what_if_ids(self) -> dict[str, int]:
        """Feature -> id count: ``num_ids_file``'s mapping, then ``num_ids`` entries over it."""
        import yaml

        out: dict[str, int] = {}
        if self.num_ids_file:
            with open(self.num_ids_file, encoding="utf-8") as fh:
                loaded = yaml.safe_load(fh) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{self.num_ids_file}: expected a mapping FEATURE: N")
            out.update({str(k): int(v) for k, v in loaded.items()})
        for item in self.num_ids:
            name, _, value = item.partition("=")
            out[name.strip()] = int(value)
        return out
