"""Applications on top of the server's APIs, not part of the server: client, PD monitor, promotion."""
