"""The manager: aspired versions from the source and policy -> load, warm up, swap, retry, unload.

The source (:mod:`serving.source`) lists ``<base_path>/<int>/`` every ``poll_wait_seconds``; the
policy (:mod:`serving.version_policy`) picks the versions to serve. New versions are loaded
(:mod:`serving.servable`) and warmed up before they become visible; the set of served versions is then
replaced in one assignment, and versions the policy no longer wants are retired (closed after their
last in-flight request). A version that fails to load is recorded with its error, retried
(``max_num_load_retries``, ``load_retry_interval``) and never counted by the policy, so the previous
version keeps serving. ``GetModelStatus`` reads the status kept per version here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving.errors import ServingError, invalid, not_found
from serving.servable import Servable
from serving.source import FileSystemPoller, versions_on_disk
from serving.version_policy import aspired_versions
from serving.warmup import warmup

log = logging.getLogger(__name__)
State = get_model_status_pb2.ModelVersionStatus.State


@dataclasses.dataclass
class VersionStatus:
    """What GetModelStatus reports for one version."""

    state: int
    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""


@dataclasses.dataclass(frozen=True)
class ModelView:
    """An immutable snapshot of one model: served versions and labels (swapped as a whole)."""

    servables: dict[int, Servable]
    labels: dict[str, int]


def _signature_compat(old: Servable, new: Servable) -> str:
    """'' when ``new`` serves every signature of ``old`` with the same inputs, else the difference."""
    for key, sig in old.signatures.items():
        other = new.signatures.get(key)
        if other is None:
            return f"signature '{key}' is missing"
        a = {k: v.dtype for k, v in sig.inputs.items()}
        b = {k: v.dtype for k, v in other.inputs.items()}
        if a != b:
            return f"signature '{key}' inputs changed from {sorted(a)} to {sorted(b)} (or their dtypes)"
    return ""


class ModelManager:
    """Loads and serves the configured models; thread-safe lookups for the request path."""

    def __init__(
        self,
        configs: list[model_server_config_pb2.ModelConfig],
        poll_wait_seconds: float = 1.0,
        session_config=None,
        enable_warmup: bool = True,
        warmup_iterations: int = 1,
        require_compatible_signatures: bool = False,
        max_num_load_retries: int = 5,
        load_retry_interval_seconds: float = 60.0,
    ):
        self._configs = {c.name: c for c in configs}
        self.poll_wait_seconds = poll_wait_seconds
        self._tf_config = session_config
        self._enable_warmup = enable_warmup
        self._warmup_iterations = warmup_iterations
        self._require_compat = require_compatible_signatures
        self._views: dict[str, ModelView] = {}
        self._status: dict[str, dict[int, VersionStatus]] = {}
        # (model, version) -> (dir mtime, failed attempts, monotonic time of the next retry)
        self._failed: dict[tuple[str, int], tuple[int, int, float]] = {}
        self._max_retries = max_num_load_retries
        self._retry_interval = load_retry_interval_seconds
        self._retrying: dict[tuple[str, int], int] = {}  # versions being retried -> attempts so far
        self._unlisted: set[str] = set()
        self._pending_labels: dict[str, dict[str, int]] = {}  # model -> configured labels not applied yet
        self._poll_lock = threading.Lock()
        self.source = FileSystemPoller(self.poll_once, poll_wait_seconds)
        self.listeners: list = []  # callables(model_name) run after a model's served set changes

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Load what is on disk now, then keep polling in the background (unless poll wait is 0)."""
        self.source.start()

    def stop(self) -> None:
        self.source.stop()
        with self._poll_lock:
            for name in list(self._views):
                self._retire_all(name)

    def reload(self, configs: list[model_server_config_pb2.ModelConfig]) -> None:
        """Apply a new model config list (HandleReloadConfigRequest); returns once it is loaded.

        FAILED_PRECONDITION (as TF Serving) when a label names a version that is not available after
        loading: that model keeps its previous labels (the rest of the config applies).
        """
        names = [c.name for c in configs]
        if len(set(names)) != len(names) or not all(names):
            raise invalid(f"model names must be unique and non-empty: {names}")
        with self._poll_lock:
            self._configs = {c.name: c for c in configs}
            for name in list(self._views):
                if name not in self._configs:
                    self._retire_all(name)
                    self._views.pop(name, None)
                    self._pending_labels.pop(name, None)
            self._poll_locked()
            problems = [
                f"Request to assign label to version {version} of model {name}, which is not currently "
                "available for inference"
                for name in names
                for version in sorted(set(self.unavailable_labels(name).values()))
            ]
        if problems:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, "; ".join(problems))

    def poll_once(self) -> None:
        with self._poll_lock:
            self._poll_locked()

    # ---- polling ---------------------------------------------------------------------------------
    def _poll_locked(self) -> None:
        for name, config in list(self._configs.items()):
            self._poll_model(name, config)

    def _poll_model(self, name: str, config: model_server_config_pb2.ModelConfig) -> None:
        on_disk = versions_on_disk(config.base_path)
        if on_disk is None:  # missing or unreadable (a storage hiccup?): keep serving what is loaded
            if name not in self._unlisted:
                log.warning(
                    "cannot list %s for model %s; keeping the loaded versions", config.base_path, name
                )
                self._unlisted.add(name)
            self._status.setdefault(name, {})
            self._views.setdefault(name, ModelView({}, {k: int(v) for k, v in config.version_labels.items()}))
            return
        self._unlisted.discard(name)
        now = time.monotonic()
        for key in [k for k in self._failed if k[0] == name]:
            mtime, attempts, retry_at = self._failed[key]
            if on_disk.get(key[1]) != mtime:  # rewritten or removed: start over
                del self._failed[key]
            elif attempts <= self._max_retries and now >= retry_at:  # TF Serving's load retries
                del self._failed[key]
                self._retrying[key] = attempts
        statuses = self._status.setdefault(name, {})
        view = self._views.get(name, ModelView({}, {}))
        servables = dict(view.servables)
        # labelled versions (configured, and those still applied while a label move is pending) stay
        labelled = {int(v) for v in config.version_labels.values()} | set(view.labels.values())
        candidates = [v for v in on_disk if (name, v) not in self._failed]
        for version in sorted(aspired_versions(config, candidates, labelled) - set(servables), reverse=True):
            servable = self._load(
                name, version, os.path.join(config.base_path, str(version)), on_disk[version], servables
            )
            if servable is not None:
                servables[version] = servable
        candidates = [v for v in on_disk if (name, v) not in self._failed]
        keep = aspired_versions(config, candidates, labelled)
        retired = [servables.pop(v) for v in list(servables) if v not in keep]
        labels = self._labels(name, config, view, servables)
        new_view = ModelView(servables, labels)
        changed = new_view.servables.keys() != view.servables.keys() or labels != view.labels
        self._views[name] = new_view  # the atomic switch: requests see the old or the new set
        for servable in retired:
            statuses[servable.version] = VersionStatus(State.UNLOADING)
            servable.retire()
            statuses[servable.version] = VersionStatus(State.END)
            log.info("unloaded %s version %d", name, servable.version)
        if changed:
            for listener in self.listeners:
                listener(name)

    def _labels(
        self,
        name: str,
        config: model_server_config_pb2.ModelConfig,
        view: ModelView,
        servables: dict[int, Servable],
    ) -> dict[str, int]:
        """The configured labels, or the previous ones while a configured label names an unloaded version.

        TF Serving refuses to point a label at a version that is not available (its default), so a
        label move never sends requests to a version that cannot answer them; the configured labels
        take effect at the first poll where all their versions are loaded. At start-up (no previous
        labels) they apply as configured.
        """
        wanted = {k: int(v) for k, v in config.version_labels.items()}
        missing = {k: v for k, v in wanted.items() if v not in servables}
        if missing and view.labels and servables:
            if self._pending_labels.get(name) != wanted:
                log.warning(
                    "model %s: keeping labels %s; %s name versions that are not available",
                    name,
                    view.labels,
                    missing,
                )
            self._pending_labels[name] = wanted
            return view.labels
        self._pending_labels.pop(name, None)
        return wanted

    def unavailable_labels(self, name: str) -> dict[str, int]:
        """Configured labels of ``name`` not applied yet because their version is not available."""
        wanted = self._pending_labels.get(name)
        view = self._views.get(name)
        if wanted is None or view is None:
            return {}
        return {k: v for k, v in wanted.items() if v not in view.servables}

    def _load(
        self, name: str, version: int, path: str, mtime: int, current: dict[int, Servable]
    ) -> Servable | None:
        statuses = self._status[name]
        statuses[version] = VersionStatus(State.LOADING)
        start = time.monotonic()
        servable = None
        try:
            servable = Servable(name, version, path, self._tf_config)
            if self._require_compat and current:
                problem = _signature_compat(current[max(current)], servable)
                if problem:
                    raise ServingError(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"incompatible with version {max(current)}: {problem}",
                    )
            warmed = warmup(servable, self._warmup_iterations) if self._enable_warmup else 0
        except Exception as err:  # noqa: BLE001 - a bad version is reported, never fatal
            if servable is not None:
                servable.retire()
            code = err.code if isinstance(err, ServingError) else grpc.StatusCode.UNKNOWN
            message = f"loading {name} version {version} from {path} failed: {type(err).__name__}: {err}"
            statuses[version] = VersionStatus(State.END, code, message[:2000])
            attempts = self._retrying.pop((name, version), 0) + 1
            self._failed[(name, version)] = (mtime, attempts, time.monotonic() + self._retry_interval)
            log.error("%s", message)
            return None
        self._retrying.pop((name, version), None)
        statuses[version] = VersionStatus(State.AVAILABLE)
        log.info(
            "loaded %s version %d in %.2fs (%d warm-up requests)",
            name,
            version,
            time.monotonic() - start,
            warmed,
        )
        return servable

    def _retire_all(self, name: str) -> None:
        view = self._views.get(name)
        if view is None:
            return
        self._views[name] = ModelView({}, view.labels)
        for servable in view.servables.values():
            servable.retire()
            self._status[name][servable.version] = VersionStatus(State.END)

    # ---- request path ----------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        return sorted(self._views)

    def _served_hint(self, name: str) -> str:
        """For a model name the server does not know: the names it serves (TF Serving's text, then a hint)."""
        if name in self._configs:
            return ""
        served = ", ".join(repr(n) for n in sorted(self._configs))
        return f"; this server serves {served}" if served else "; this server serves no model"

    def view(self, name: str) -> ModelView | None:
        return self._views.get(name)

    def resolve_version(self, spec: model_pb2.ModelSpec, view: ModelView | None = None) -> int | None:
        """The explicit version a ModelSpec asks for (version or label), None for the latest.

        ``view``: the snapshot the caller serves from, so a label resolves against the same swap.
        """
        choice = spec.WhichOneof("version_choice")
        if choice == "version":
            return spec.version.value
        if choice == "version_label":
            view = view if view is not None else self._views.get(spec.name)
            labels = (
                view.labels
                if view is not None
                else {k: int(v) for k, v in self._configs[spec.name].version_labels.items()}
                if spec.name in self._configs
                else {}
            )
            if spec.version_label not in labels:
                raise invalid(f"Unrecognized servable version label: {spec.version_label}")
            return labels[spec.version_label]
        return None

    def get(self, spec: model_pb2.ModelSpec) -> Servable:
        """The servable for a ModelSpec, acquired: the caller must ``release()`` it."""
        if not spec.name:
            raise invalid("Missing ModelSpec name")
        while True:  # a version retired between lookup and acquire: the new view has its successor
            view = self._views.get(spec.name)
            version = self.resolve_version(spec, view)
            if view is None or not view.servables:
                what = f"Latest({spec.name})" if version is None else f"Specific({spec.name}, {version})"
                raise not_found(f"Servable not found for request: {what}{self._served_hint(spec.name)}")
            servable = view.servables.get(max(view.servables) if version is None else version)
            if servable is None:
                raise not_found(f"Servable not found for request: Specific({spec.name}, {version})")
            if servable.acquire():
                return servable

    def status(self, spec: model_pb2.ModelSpec) -> list[tuple[int, VersionStatus]]:
        """(version, status) pairs for GetModelStatus, one version if the spec names one."""
        if not spec.name:
            raise invalid("Missing model name in request.")
        statuses = self._status.get(spec.name)
        if spec.name not in self._configs or not statuses:
            hint = self._served_hint(spec.name)
            raise not_found(f"Could not find any versions of model {spec.name}{hint}")
        version = self.resolve_version(spec)
        if version is None:
            return sorted(dict(statuses).items(), reverse=True)
        if version not in statuses:
            raise not_found(f"Could not find version {version} of model {spec.name}")
        return [(version, statuses[version])]
