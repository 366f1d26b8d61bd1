"""free_port: a port for a server to bind a moment later, out of the way of outgoing connections."""
from __future__ import annotations

import socket

from warden import embedded
from warden.embedded import free_port


def test_the_port_is_below_the_ephemeral_range_and_can_be_bound():
    low = embedded._ephemeral_low()
    ports = {free_port() for _ in range(50)}
    assert all(1024 <= port < low for port in ports)
    assert len(ports) > 1  # random: two tests asking at once do not get the same one
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))


def test_a_port_in_use_is_not_given():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        port = taken.getsockname()[1]
        assert free_port(preferred=port) != port
        assert free_port() != port


def test_without_room_below_the_range_the_kernel_chooses(monkeypatch):
    monkeypatch.setattr(embedded, "_ephemeral_low", lambda: 1024)
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))
