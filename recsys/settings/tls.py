"""The client TLS fields of ``recsys query``, ``monitor`` and ``promote``: one set of flag names."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pipelines.typed import setting

if TYPE_CHECKING:
    from serving.tools.tls import ClientTLS


@dataclasses.dataclass(frozen=True)
class ClientTLSSettings:
    """PEM files for a server started with ``--ssl_cert_file`` (and ``--ssl_client_ca``: mutual TLS)."""

    root_cert: str = setting("", "PEM CA certificate that signed the server's: connect over TLS")
    client_cert: str = setting("", "PEM client certificate for a server with --ssl_client_ca (mutual TLS)")
    client_key: str = setting("", "PEM private key of --client_cert")

    def check_tls(self) -> None:
        """ValueError when the certificate comes without its key or the key without the certificate."""
        if bool(self.client_cert) != bool(self.client_key):
            raise ValueError("client_cert and client_key go together (mutual TLS needs both)")

    def client_tls(self) -> ClientTLS:
        from serving.tools.tls import ClientTLS

        return ClientTLS(self.root_cert, self.client_cert, self.client_key)
