"""TF Serving's ModelVersionPolicy: which of the versions on disk to serve (latest N, all, specific).

Ours differs in one way: a version a label points to is always served (when on disk and loadable),
whatever the policy says. TF Serving unloads it (``latest { num_versions: 2 }`` plus one more export
leaves a ``stable`` label on version 1 answering "Servable not found"); here the label pins it.
"""

from __future__ import annotations

from tensorflow_serving.config import model_server_config_pb2


def wanted_versions(config: model_server_config_pb2.ModelConfig, candidates: list[int]) -> set[int]:
    """The versions the policy serves among ``candidates`` (on disk and not failed)."""
    policy = config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return set(candidates)
    if kind == "specific":
        return set(policy.specific.versions) & set(candidates)
    n = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions > 0 else 1
    return set(sorted(candidates)[-n:])


def aspired_versions(
    config: model_server_config_pb2.ModelConfig, candidates: list[int], labelled: set[int]
) -> set[int]:
    """The policy's versions plus every labelled version among ``candidates`` (labels pin versions)."""
    return wanted_versions(config, candidates) | (labelled & set(candidates))
