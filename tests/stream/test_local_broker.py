"""The local broker's cluster id: Kafka's storage tool refuses ids that start with "-"."""

from __future__ import annotations

import uuid
from unittest import mock

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
