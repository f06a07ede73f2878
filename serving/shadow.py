"""Shadow mode: mirror a sampled share of live Predict traffic to a shadow version/model, record PD.

The primary response is computed and returned first; mirroring only enqueues (never blocks: a full
queue drops the sample and counts it), and a background thread runs the shadow and feeds a
:class:`~serving.divergence.WindowedPD`. So the shadow adds no latency to the primary response.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import random
import threading

import numpy as np
from tensorflow_serving.apis import model_pb2

from serving import inference, prometheus
from serving.divergence import WindowedPD
from serving.errors import ServingError
from serving.gate import Thresholds
from serving.servable import Signature

log = logging.getLogger(__name__)


def parse_target(text: str) -> model_pb2.ModelSpec:
    """``name``, ``name@version`` or ``name:label`` -> a ModelSpec."""
    spec = model_pb2.ModelSpec()
    if "@" in text:
        name, version = text.split("@", 1)
        spec.name = name
        spec.version.value = int(version)
    elif ":" in text:
        spec.name, spec.version_label = text.split(":", 1)
    else:
        spec.name = text
    if not spec.name:
        raise ValueError(f"bad model reference {text!r}: expected name[@version|:label]")
    return spec


@dataclasses.dataclass
class ShadowConfig:
    """Mirror Predict requests for model ``primary`` to ``target`` (name[@version|:label])."""

    primary: str
    target: str
    sample_rate: float = 0.1
    window: int = 10000
    evaluate_every: int = 100  # mirrored requests between PD evaluations
    logdir: str | None = None
    output: str = ""  # output alias compared; default the signature's only (or 'probability') output
    max_queue: int = 1000
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)
    seed: int | None = None


class Shadow:
    """Runs mirrored requests against the shadow servable and keeps the PD window."""

    def __init__(self, manager, config: ShadowConfig):
        self.manager = manager  # serving.manager.ModelManager: resolves the shadow target
        self.config = config
        self.target = parse_target(config.target)
        self.pd = WindowedPD(
            f"shadow/{config.primary}_vs_{config.target}",
            2,
            config.window,
            logdir=config.logdir,
            thresholds=config.thresholds,
            replica_names=[config.primary, config.target],
        )
        self._queue: queue.Queue = queue.Queue(maxsize=config.max_queue)
        self._random = random.Random(config.seed)
        self.mirrored = 0
        self.dropped = 0
        self.errors = 0
        self._since_eval = 0
        self._thread = threading.Thread(target=self._loop, name="shadow", daemon=True)
        self._thread.start()

    def _output(self, signature: Signature, out: dict) -> str | None:
        if self.config.output:
            return self.config.output if self.config.output in out else None
        if len(out) == 1:
            return next(iter(out))
        return "probability" if "probability" in out else None

    def offer(self, spec: model_pb2.ModelSpec, signature: Signature, inputs: dict, out: dict) -> None:
        """Called after a primary Predict; samples and enqueues without blocking."""
        if spec.name != self.config.primary or self._random.random() >= self.config.sample_rate:
            return
        alias = self._output(signature, out)
        if alias is None:
            return
        try:
            self._queue.put_nowait((signature.key, inputs, alias, out[alias]))
        except queue.Full:
            self.dropped += 1

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            try:
                self._mirror(*item)
            finally:
                self._queue.task_done()

    def _mirror(self, key: str, inputs: dict, alias: str, primary: np.ndarray) -> None:
        """Run one mirrored request on the shadow and add both predictions to the PD window."""
        spec = model_pb2.ModelSpec()
        spec.CopyFrom(self.target)
        spec.signature_name = key
        try:
            servable = self.manager.get(spec)
            try:
                # directly on this thread: shadow calls never take the primary's batch slots
                _, out = inference.run_inputs(servable, key, inputs, (alias,), inference.direct)
            finally:
                servable.release()
            self.pd.add([np.asarray(primary), np.asarray(out[alias])])
            self.mirrored += 1
            self._since_eval += 1
            if self._since_eval >= self.config.evaluate_every:
                self._since_eval = 0
                self.pd.evaluate()
        except (ServingError, ValueError) as err:
            self.errors += 1
            if self.errors <= 10 or self.errors % 1000 == 0:
                log.warning("shadow request to %s failed: %s", self.config.target, err)
        except Exception:  # noqa: BLE001 - the shadow must never affect serving
            self.errors += 1
            log.exception("shadow request failed")

    def flush(self, timeout: float = 10.0) -> dict:
        """Wait until the mirrored requests queued so far are processed, then evaluate."""
        import time

        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.pd.evaluate() if self.pd.rows_seen else {}

    def collect(self):
        """Prometheus families: mirrored/dropped/failed counts, then the PD window's."""
        labels = {"primary": self.config.primary, "shadow": self.config.target}
        for n, v in (("mirrored", self.mirrored), ("dropped", self.dropped), ("errors", self.errors)):
            yield prometheus.counter(f"recsys_shadow_{n}_total", f"shadow requests {n}", [(labels, v)])
        yield from self.pd.collect()

    def metrics_text(self) -> str:
        return prometheus.render(prometheus.registry(self.collect))

    def stop(self) -> None:
        try:
            self._queue.put(None, timeout=1)
        except queue.Full:
            pass
        self._thread.join(timeout=5)
        self.pd.close()
