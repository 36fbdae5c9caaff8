"""The local broker's cluster id (Kafka's storage tool refuses ids that start with "-") and ports."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest

from riskpulse.stream import local_broker


def test_cluster_ids_never_start_with_a_dash() -> None:
    dashed = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))  # 0b111110... encodes as "-"
    plain = uuid.UUID(bytes=bytes([0x10]) + bytes(15))
    with mock.patch.object(local_broker.uuid, "uuid4", side_effect=[dashed, plain]) as draw:
        cluster_id = local_broker.new_cluster_id()
    assert draw.call_count == 2
    assert not cluster_id.startswith("-")
    assert len(cluster_id) == 22
    assert local_broker.base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")


def test_a_port_chosen_but_not_yet_bound_is_never_handed_out_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo test picked the broker's port, then the broker picked the same one for its
    controller (nothing listened on it yet) and Kafka refused to format its storage."""
    offered = iter([40001, 40001, 40002])

    class Socket:
        def __enter__(self) -> "Socket":
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def bind(self, address: tuple[str, int]) -> None:
            self.port = next(offered)

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(local_broker.socket, "socket", Socket)
    assert local_broker.free_port() == 40001
    assert local_broker.free_port(exclude={40001}) == 40002
    monkeypatch.undo()  # real sockets: ports chosen together are distinct
    assert len(set(local_broker.free_ports(8))) == 8
