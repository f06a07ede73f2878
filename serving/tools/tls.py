"""A client's TLS files (CA, and for mutual TLS its certificate and key), for gRPC channels and REST.

One type for ``recsys query``, ``monitor`` and ``promote``: a server started with ``--ssl_cert_file``
needs ``root_cert`` (the CA that signed it), one also started with ``--ssl_client_ca`` needs a
``client_cert`` and ``client_key`` that CA signed (TF Serving's ``client_verify``).
"""

from __future__ import annotations

import dataclasses
import pathlib
import ssl

import grpc


@dataclasses.dataclass(frozen=True)
class ClientTLS:
    """PEM file paths; all empty: plaintext."""

    root_cert: str = ""
    client_cert: str = ""
    client_key: str = ""

    def __post_init__(self) -> None:
        if bool(self.client_cert) != bool(self.client_key):
            raise ValueError("client_cert and client_key go together (mutual TLS needs both)")

    @property
    def enabled(self) -> bool:
        return bool(self.root_cert or self.client_cert)

    def _read(self, path: str) -> bytes | None:
        return pathlib.Path(path).read_bytes() if path else None

    def channel(self, address: str, options=None) -> grpc.Channel:
        """A gRPC channel to ``address``: TLS (with the client certificate, if any) or plaintext."""
        if not self.enabled:
            return grpc.insecure_channel(address, options)
        credentials = grpc.ssl_channel_credentials(
            self._read(self.root_cert), self._read(self.client_key), self._read(self.client_cert)
        )
        return grpc.secure_channel(address, credentials, options)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The context for HTTPS (REST), or None for plaintext."""
        if not self.enabled:
            return None
        context = ssl.create_default_context(cafile=self.root_cert or None)
        if self.client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


PLAIN = ClientTLS()
