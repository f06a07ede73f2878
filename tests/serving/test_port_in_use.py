"""A port already in use is one clear error (which flag, what to do), not a traceback from grpc."""

from __future__ import annotations

import socket

import pytest

from serving.model_config import single_model_config
from serving.server import ModelServer, ServerOptions


@pytest.mark.parametrize("which", ["grpc", "rest"])
def test_port_in_use(base_path, which):
    base_path(1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = {"port": port} if which == "grpc" else {"port": 0, "rest_api_port": port}
        config = [single_model_config("tiny", base_path.path)]
        server = ModelServer(ServerOptions(config, file_system_poll_wait_seconds=0.1, **options))
        flag = "--port" if which == "grpc" else "--rest_api_port"
        with pytest.raises(OSError, match=rf"could not bind the \w+ port 127.0.0.1:{port} \({flag}\)"):
            server.start()
    # what start() had started is stopped again: the version poller and the loaded version
    assert server.manager.source.thread is not None and not server.manager.source.thread.is_alive()
    assert not server.manager.view("tiny").servables
