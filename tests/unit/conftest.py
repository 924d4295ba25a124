"""Unit tests open no network socket: a connect or bind on an IP socket fails the test at once."""

import socket

import pytest


class SocketInUnitTest(RuntimeError):
    """Raised when a unit test touches the network; move it to tests/integration instead."""


@pytest.fixture(autouse=True)
def no_ip_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect, real_bind = socket.socket.connect, socket.socket.bind

    def guard(real):
        def call(self: socket.socket, address, *args, **kwargs):
            if self.family in (socket.AF_INET, socket.AF_INET6):
                raise SocketInUnitTest(f"unit test opened an IP socket to {address!r}")
            return real(self, address, *args, **kwargs)

        return call

    monkeypatch.setattr(socket.socket, "connect", guard(real_connect))
    monkeypatch.setattr(socket.socket, "bind", guard(real_bind))
