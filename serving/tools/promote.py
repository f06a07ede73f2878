"""PD-gated promotion of a version label on a running server (``recsys promote``).

The gate is :meth:`serving.monitor.Monitor.check` between the versions the ``target`` and ``candidate``
labels name (resolved on the server and checked against the models.config file). Only when every
threshold holds is the target label moved to the candidate's version: the file's ModelServerConfig
with that one label changed goes to every server with ModelService's ``HandleReloadConfigRequest``
(which TF Serving answers too), the move is read back, and then models.config is rewritten atomically
(:mod:`pipelines.atomic`, the file's mode kept; its leading comment lines are kept) so a restart keeps
the change.

Each applied move is appended to a JSON history next to models.config (``<file>.history.json``):
``rollback`` undoes the last promotion of that label that was not rolled back yet (a stack), moving it
back to the version it had before. Every decision is one JSON record with its figures, printed,
logged, and appended to an optional JSON-lines log.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import fcntl
import json
import logging
import os
from collections.abc import Iterator

import grpc
from google.protobuf import text_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from pipelines import atomic
from serving.gate import Thresholds
from serving.tools.tls import PLAIN, ClientTLS

log = logging.getLogger(__name__)

PROMOTED, REFUSED, UNCHANGED, ROLLED_BACK, ERROR = "promoted", "refused", "unchanged", "rolled_back", "error"
EXIT_CODES = {PROMOTED: 0, UNCHANGED: 0, ROLLED_BACK: 0, REFUSED: 1, ERROR: 2}


class PromoteError(Exception):
    """A reason promotion cannot be decided or applied (exit 2)."""


@dataclasses.dataclass
class PromoteConfig:
    servers: list[str]  # host:port; the gate runs on the first, the label move goes to all
    model: str
    model_config_file: str
    candidate: str = "canary"
    target: str = "stable"
    rows: str = ""
    row_format: str = "auto"
    batch_size: int = 64
    k: int = 10
    signature_name: str = ""
    output: str = ""
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)  # at least one limit set
    dry_run: bool = False
    rollback: bool = False
    history_file: str = ""  # default: <model_config_file>.history.json
    log_file: str = ""  # JSON lines, one per decision (optional)
    timeout: float = 30.0
    tls: ClientTLS = PLAIN  # CA and client certificate for TLS / mutual-TLS servers

    @property
    def history(self) -> str:
        return self.history_file or self.model_config_file + ".history.json"


# ---- files ---------------------------------------------------------------------------------------
def read_config(path: str) -> tuple[model_server_config_pb2.ModelServerConfig, str]:
    """models.config -> (ModelServerConfig, its leading comment lines, kept when it is rewritten)."""
    with open(path) as fh:
        text = fh.read()
    header = []
    for line in text.splitlines(keepends=True):
        if line.strip() and not line.lstrip().startswith("#"):
            break
        header.append(line)
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    if config.WhichOneof("config") != "model_config_list":
        raise PromoteError(f"{path}: only model_config_list is supported")
    return config, "".join(header)


def write_atomically(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` (:func:`pipelines.atomic.write_text`: fsync, file mode kept)."""
    atomic.write_text(path, text)


@contextlib.contextmanager
def config_lock(path: str) -> Iterator[None]:
    """Serialize the promotions and rollbacks of every model of one models.config (``<path>.lock``, an
    flock: released when the process ends, so a killed promote never leaves it held)."""
    with open(path + ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def config_text(config: model_server_config_pb2.ModelServerConfig, header: str) -> str:
    return header + text_format.MessageToString(config)


def read_history(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return json.load(fh)["moves"]


def last_promotion(history: list[dict], model: str, target: str) -> dict | None:
    """The latest promotion of ``model``'s ``target`` label not undone by a rollback (a stack)."""
    stack: list[dict] = []
    for move in history:
        if move["model"] != model or move["target"] != target:
            continue
        if move["action"] == "promote":
            stack.append(move)
        elif move["action"] == "rollback" and stack:
            stack.pop()
    return stack[-1] if stack else None


def model_config(
    config: model_server_config_pb2.ModelServerConfig, name: str
) -> model_server_config_pb2.ModelConfig:
    for c in config.model_config_list.config:
        if c.name == name:
            return c
    names = [c.name for c in config.model_config_list.config]
    raise PromoteError(f"model {name!r} is not in the model config file (it has {names})")


def with_label(
    config: model_server_config_pb2.ModelServerConfig, model: str, label: str, version: int
) -> model_server_config_pb2.ModelServerConfig:
    """A copy of ``config`` with ``model``'s ``label`` pointing at ``version``."""
    out = copy.deepcopy(config)
    model_config(out, model).version_labels[label] = version
    return out


# ---- server --------------------------------------------------------------------------------------
def served_version(channel: grpc.Channel, model: str, label: str, timeout: float) -> int:
    """The version a label resolves to on the server (GetModelMetadata, which TF Serving resolves too)."""
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec(name=model, version_label=label), metadata_field=["signature_def"]
    )
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    return stub.GetModelMetadata(request, timeout=timeout).model_spec.version.value


def reload_config(
    channel: grpc.Channel, config: model_server_config_pb2.ModelServerConfig, timeout: float
) -> None:
    """HandleReloadConfigRequest; raises PromoteError when the server refuses it."""
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    response = stub.HandleReloadConfigRequest(
        model_management_pb2.ReloadConfigRequest(config=config), timeout=timeout
    )
    if response.status.error_code != 0:
        raise PromoteError(f"the server refused the config: {response.status.error_message}")


# ---- the decision --------------------------------------------------------------------------------
class Promotion:
    """One run of ``recsys promote``: decide, apply (unless dry run), record."""

    def __init__(self, config: PromoteConfig):
        if not config.servers:
            raise PromoteError("give at least one --server")
        self.config = config
        self.record: dict = {
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "action": "rollback" if config.rollback else "promote",
            "model": config.model,
            "target": config.target,
            "candidate": config.candidate,
            "servers": list(config.servers),
            "model_config_file": config.model_config_file,
            "dry_run": config.dry_run,
            "applied": False,
        }
        self._channels = {s: config.tls.channel(s) for s in config.servers}

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def run(self) -> dict:
        """The decision record (``decision`` is one of EXIT_CODES); errors become decision 'error'."""
        try:
            self._rollback() if self.config.rollback else self._promote()
        except Exception as err:  # noqa: BLE001 - anything unexpected is exit 2 (never 1: refused)
            from serving.tools.client import wrong_port_hint

            where = " or ".join(self.config.servers)  # which of them failed, the error does not say
            hint = wrong_port_hint(err, where) if isinstance(err, grpc.RpcError) else ""
            detail = f"{err.code().name}: {err.details()}" if isinstance(err, grpc.RpcError) else str(err)
            self.record.update(decision=ERROR, reason=hint or f"{type(err).__name__}: {detail}")
        self._report()
        return self.record

    # ---- steps -----------------------------------------------------------------------------------
    def _served(self, label: str, want: int) -> int:
        """The version ``label`` names on every server; PromoteError unless it is ``want`` everywhere."""
        c = self.config
        for server, channel in self._channels.items():
            got = served_version(channel, c.model, label, c.timeout)
            if got != want:
                raise PromoteError(
                    f"{server}: label {label!r} of {c.model} serves version {got} but "
                    f"{c.model_config_file} says {want}; reconcile them first (promote edits the file)"
                )
        return want

    def _labels(self) -> tuple[model_server_config_pb2.ModelServerConfig, str, dict[str, int]]:
        c = self.config
        config, header = read_config(c.model_config_file)
        labels = {k: int(v) for k, v in model_config(config, c.model).version_labels.items()}
        return config, header, labels

    def _gate(self, target_version: int, candidate_version: int) -> dict:
        """PD between the two versions on the first server over every row (serving.monitor)."""
        from serving.tools.monitor import Monitor, MonitorConfig

        c = self.config
        if not c.rows:
            raise PromoteError("the PD gate needs --rows")
        server = c.servers[0]
        monitor = Monitor(
            MonitorConfig(
                replicas=[f"{server}/{c.model}@{target_version}", f"{server}/{c.model}@{candidate_version}"],
                rows=c.rows,
                row_format=c.row_format,
                batch_size=c.batch_size,
                k=c.k,
                group=f"promote_{c.model}",
                signature_name=c.signature_name,
                output=c.output,
                thresholds=c.thresholds,
                timeout=c.timeout,
                tls=c.tls,
            )
        )
        try:
            values = monitor.check()
        finally:
            monitor.close()
        if values["errors"]:
            raise PromoteError(f"requests failed during the gate: {values['errors']}")
        return values

    def _move(self, version: int, expect: int) -> None:
        """Move the target label from ``expect`` to ``version``: under the models.config lock, re-read the
        file (another promotion may have changed it since the gate started), reload every server with the
        label moved, read it back, rewrite the file and append the history; any failure puts the servers
        that moved back on the file's config."""
        c = self.config
        with config_lock(c.model_config_file):
            config, header, labels = self._labels()
            if labels.get(c.target) != expect:
                raise PromoteError(
                    f"{c.target!r} of {c.model} moved to version {labels.get(c.target)} in "
                    f"{c.model_config_file} while this decision was made (it was {expect}); run it again")
            new = with_label(config, c.model, c.target, version)
            done = []
            try:
                for server, channel in self._channels.items():
                    done.append(server)
                    reload_config(channel, new, c.timeout)
                    got = served_version(channel, c.model, c.target, c.timeout)
                    if got != version:
                        raise PromoteError(f"{server}: after the reload {c.target!r} serves {got}, not "
                                           f"{version}")
                write_atomically(c.model_config_file, config_text(new, header))
            except BaseException:
                for server in done:  # best effort: put the servers that moved back where they were
                    try:
                        reload_config(self._channels[server], config, c.timeout)
                    except (PromoteError, grpc.RpcError) as err:
                        log.error("could not restore the config on %s: %s", server, err)
                raise
            self.record["applied"] = True
            history = read_history(c.history)
            history.append({k: v for k, v in self.record.items() if k not in ("dry_run", "applied")})
            write_atomically(c.history, json.dumps({"moves": history}, indent=1, sort_keys=True) + "\n")

    def _promote(self) -> None:
        c = self.config
        self.record["thresholds"] = c.thresholds.as_dict()
        if not c.thresholds.limits():
            raise PromoteError("the PD gate needs a threshold (--max_relative_pd, --max_topk_churn, ...)")
        _, _, labels = self._labels()
        for label in (c.target, c.candidate):
            if label not in labels:
                raise PromoteError(f"model {c.model} has no label {label!r} in {c.model_config_file}")
        before, candidate = labels[c.target], labels[c.candidate]
        self.record.update(target_version_before=before, candidate_version=candidate)
        self._served(c.target, before)
        self._served(c.candidate, candidate)
        if before == candidate:
            self.record.update(
                decision=UNCHANGED,
                target_version_after=before,
                reason=f"{c.target!r} already serves version {candidate}",
            )
            return
        values = self._gate(before, candidate)
        figures = ("relative", "absolute", "share_above", "topk_churn", "flip_rate", "rows", "relative_max")
        self.record["pd"] = {k: values[k] for k in figures}
        self.record["requests"] = values["requests"]
        self.record["alerts"] = values["alerts"]
        if values["alerts"]:
            self.record.update(
                decision=REFUSED,
                target_version_after=before,
                reason="PD gate failed: " + ", ".join(values["alerts"]),
            )
            return
        self.record.update(decision=PROMOTED, target_version_after=candidate)
        if c.dry_run:
            self.record["reason"] = "PD gate passed (dry run: nothing changed)"
            return
        self.record["reason"] = "PD gate passed"
        self._move(candidate, expect=before)

    def _rollback(self) -> None:
        c = self.config
        _, _, labels = self._labels()
        if c.target not in labels:
            raise PromoteError(f"model {c.model} has no label {c.target!r} in {c.model_config_file}")
        last = last_promotion(read_history(c.history), c.model, c.target)
        if last is None:
            raise PromoteError(f"no promotion of {c.model}:{c.target} to roll back in {c.history}")
        current = labels[c.target]
        if current != last["target_version_after"]:
            raise PromoteError(
                f"{c.target!r} is at version {current}, not {last['target_version_after']} as the last "
                f"promotion ({last['time']}) left it; edit by hand or promote instead"
            )
        previous = last["target_version_before"]
        self._served(c.target, current)
        self.record.update(
            target_version_before=current,
            target_version_after=previous,
            undoes=last["time"],
            decision=ROLLED_BACK,
            reason=f"rollback of the promotion at {last['time']} ({previous} -> {current})",
        )
        if not c.dry_run:
            self._move(previous, expect=current)

    def _report(self) -> None:
        r = self.record
        pd = r.get("pd")
        figures = (
            f" relative PD {pd['relative']:.6g}, absolute PD {pd['absolute']:.6g},"
            f" top-k churn {pd['topk_churn']:.6g}, flip rate {pd['flip_rate']:.6g}"
            f" over {int(pd['rows'])} rows;"
            if pd
            else ""
        )
        before, after = r.get("target_version_before", "?"), r.get("target_version_after", "?")
        move = f"{before} -> {after}" if before != after else f"stays at {before}"
        if r["action"] == "promote" and "candidate_version" in r:
            move += f" ({r['candidate']!r} is {r['candidate_version']})"
        line = (
            f"{r['decision'].upper()}{' (dry run)' if r['dry_run'] else ''}: {r['model']} {r['target']!r} "
            f"{move};{figures} {r.get('reason', '')}"
        )
        (log.error if r["decision"] == ERROR else log.info)("%s", line)
        if self.config.log_file:
            with open(self.config.log_file, "a") as fh:
                fh.write(json.dumps(r, sort_keys=True) + "\n")
