"""Port picking for local platforms: every process of one platform gets its own port."""

from __future__ import annotations

import socket

from scripts.platform import SERVICES, Ports, free_ports


def test_free_ports_are_distinct_and_bindable() -> None:
    for _ in range(50):
        ports = free_ports(11)
        assert len(set(ports)) == 11
    for port in free_ports(3):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_free_platform_never_gives_two_processes_one_port() -> None:
    for _ in range(50):
        ports = Ports.free()
        every = [ports.gateway, ports.github, ports.openai, *ports.grpc.values(),
                 *ports.metrics.values()]
        assert len(every) == 3 + 2 * len(SERVICES)
        assert len(set(every)) == len(every)
