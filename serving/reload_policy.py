"""Who may change what is served: the gate in front of ModelService.HandleReloadConfigRequest.

Any client that reaches the gRPC port can send that RPC, so it is refused unless the operator turned
it on (``--allow_config_reload``). Even then, every base path must lie under an allowed root (default:
the parent directories of the models the server started with), so a client cannot have the server load
a SavedModel -- and run its init ops -- from a directory the client wrote; and a config without any
model (which would unload every model) is refused.
"""

from __future__ import annotations

import dataclasses
import os

import grpc
from tensorflow_serving.config import model_server_config_pb2

from serving.errors import ServingError, invalid, precondition


def _denied(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.PERMISSION_DENIED, message)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@dataclasses.dataclass(frozen=True)
class ReloadPolicy:
    """Whether reloads are accepted, and the directories their base paths must lie under."""

    allowed: bool = False
    roots: tuple[str, ...] = ()

    @classmethod
    def for_models(
        cls, allowed: bool, roots: tuple[str, ...], models: list[model_server_config_pb2.ModelConfig]
    ) -> ReloadPolicy:
        """``roots``, or when empty the parent directory of each startup model's base path."""
        chosen = roots or tuple(os.path.dirname(os.path.realpath(c.base_path)) for c in models)
        return cls(allowed, tuple(sorted({os.path.realpath(r) for r in chosen if r})))

    def check(self, configs: list[model_server_config_pb2.ModelConfig]) -> None:
        """PERMISSION_DENIED / FAILED_PRECONDITION / INVALID_ARGUMENT unless this reload may apply."""
        if not self.allowed:
            raise _denied(
                "HandleReloadConfigRequest is disabled on this server: start it with --allow_config_reload "
                "to let clients change the served models (or edit --model_config_file with "
                "--model_config_file_poll_wait_seconds)"
            )
        if not configs:
            raise precondition(
                "refusing a model config without models: it would unload every model "
                "(remove models one at a time, or stop the server)"
            )
        for c in configs:
            if c.model_platform not in ("", "tensorflow"):
                raise invalid(f"model {c.name}: unsupported platform {c.model_platform!r}")
            path = os.path.realpath(c.base_path) if c.base_path else ""
            if not path or not any(_under(path, root) for root in self.roots):
                raise _denied(
                    f"model {c.name}: base_path {c.base_path!r} is not under an allowed root "
                    f"{list(self.roots)} (--allowed_model_roots)"
                )
