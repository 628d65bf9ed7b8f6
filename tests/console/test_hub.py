from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend

from console.hub import CHANNEL, EventHub, Watcher
from console.wire import decode_event, encode_event
from dialogue.events import CallEvent, CallStarted, StateChanged, TurnLatency
from tests.console.conftest import call_events


@pytest.fixture
async def hub() -> AsyncIterator[EventHub]:
    async with ChannelsPlugin(backend=MemoryChannelsBackend(), channels=[CHANNEL]) as channels:
        hub = EventHub(channels)
        await hub.start()
        yield hub
        await hub.stop()


async def publish_all(hub: EventHub, events: list[CallEvent]) -> None:
    """Publishes and returns once the hub has delivered the last of them (in order, so all of them),
    awaited on a watcher of its own rather than polled against a clock."""
    with hub.watch(None) as probe:
        for event in events:
            hub.publish(event)
        while (await probe.next_batch())[-1:] != events[-1:]:
            pass


def test_events_survive_the_wire() -> None:
    for event in call_events("CA1"):
        assert decode_event(encode_event(event)) == event
    assert decode_event(b'{"kind": "from_the_future", "call_sid": "x"}') is None
    assert decode_event(b"not json") is None
    newer = b'{"kind": "latency", "call_sid": "x", "at": 1.0, "turn": 2, "new_stage_ms": 5}'
    assert decode_event(newer) == TurnLatency(call_sid="x", at=1.0, turn=2)


async def test_published_events_reach_the_view_and_the_watchers(hub: EventHub) -> None:
    with hub.watch("CA1") as mine, hub.watch("CA2") as other, hub.watch(None) as everything:
        await publish_all(hub, call_events("CA1", ended=False))
        batch = await mine.next_batch(1)
        assert {e.call_sid for e in batch} == {"CA1"}
        assert len(await everything.next_batch(1)) == len(batch)
        assert await other.next_batch(0.01) == []
    assert hub.watcher_count == 0
    assert hub.live.get("CA1") is not None


async def test_a_slow_watcher_loses_old_updates_and_never_blocks_publishing(hub: EventHub) -> None:
    with hub.watch(None) as slow:
        await publish_all(
            hub, [StateChanged(call_sid="CA9", source="a", dest=f"s{i}", trigger="t") for i in range(500)]
        )
        batch = await slow.next_batch(1)
        assert len(batch) == 64
        assert isinstance(batch[-1], StateChanged)
        assert batch[-1].dest == "s499"
        assert slow.dropped == 500 - 64


async def test_publish_before_start_is_dropped_quietly() -> None:
    hub = EventHub(ChannelsPlugin(backend=MemoryChannelsBackend(), channels=[CHANNEL]))
    hub.publish(CallStarted(call_sid="CA1"))
    hub.publish(CallStarted(call_sid="CA2"))
    hub.flush()
    assert hub.dropped == 2


async def test_events_published_together_go_out_as_one_message_and_arrive_in_order(hub: EventHub) -> None:
    sent: list[bytes] = []
    publish = hub._channels.publish

    def spy(data: bytes, channels: str) -> None:
        sent.append(data)
        publish(data, channels)

    hub._channels.publish = spy  # type: ignore[method-assign]
    events = [StateChanged(call_sid=f"CA{i % 3}", source="a", dest=f"s{i}", trigger="t") for i in range(10)]
    with hub.watch(None) as probe:
        await publish_all(hub, events)
        assert await probe.next_batch(0) == events
    assert len(sent) == 1
    assert [decode_event(line) for line in sent[0].split(b"\n")] == events


async def test_stopping_the_hub_sends_what_is_pending() -> None:
    async with ChannelsPlugin(backend=MemoryChannelsBackend(), channels=[CHANNEL]) as channels:
        hub = EventHub(channels)
        subscriber = await channels.subscribe(CHANNEL)
        started = CallStarted(call_sid="CA1")
        hub.publish(started)
        await hub.stop()
        payload = await anext(subscriber.iter_events())
    assert decode_event(payload) == started


async def test_watcher_times_out_empty() -> None:
    assert await Watcher(None).next_batch(0.01) == []
