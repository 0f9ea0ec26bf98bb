"""Fair run slots: while several namespaces wait, none holds more than its share; whoever waits alone may use them
all. Then the same through the dispatcher, with Workers of two namespaces and a fake clock."""

from __future__ import annotations

import asyncio
from collections import Counter

from coco_operator.dispatcher.runner import Dispatcher, Worker
from coco_operator.dispatcher.slots import FairSlots
from tests.unit.fake_kube import FakeKube, datasource_body
from tests.unit.test_runner import Clock, FakeSync, settings


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_namespace_may_use_every_slot() -> None:
    slots = FairSlots(3)
    for _ in range(3):
        await slots.acquire("big")
    assert slots.full() and slots.running == Counter(big=3)


async def test_freed_slots_go_to_the_namespace_with_the_fewest_runs() -> None:
    slots = FairSlots(4)
    for _ in range(4):
        await slots.acquire("big")  # alone, it takes everything
    order: list[str] = []

    async def run(ns: str) -> None:
        await slots.acquire(ns)
        order.append(ns)

    # "big" queues six more runs before the small namespaces arrive.
    waiting = [asyncio.create_task(run("big")) for _ in range(6)]
    waiting += [asyncio.create_task(run("small-a")), asyncio.create_task(run("small-b"))]
    await _settle()
    assert slots.waiting == 8 and not order
    for _ in range(3):
        slots.release("big")
        await _settle()
    # The first freed slots went to the namespaces that had none, although "big" waited longer.
    assert order == ["small-a", "small-b", "big"]
    assert slots.running == Counter({"big": 2, "small-a": 1, "small-b": 1})
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def test_no_namespace_holds_more_than_its_share_while_others_wait() -> None:
    """Runs of three namespaces of very different sizes, each run one tick long. `a` arrives first and, alone, takes
    every slot; from then on, at every tick where all three still have runs waiting, each holds ceil(limit / 3)
    slots at most."""
    slots, limit = FairSlots(4), 4
    backlog = {"a": 12, "b": 4, "c": 2}
    held: list[Counter[str]] = []
    holders: list[tuple[str, asyncio.Task[None]]] = []

    async def one(ns: str) -> None:
        await slots.acquire(ns)

    for ns, n in backlog.items():
        holders += [(ns, asyncio.create_task(one(ns))) for _ in range(n)]
    await _settle()
    granted: set[asyncio.Task[None]] = set()
    while len(granted) < sum(backlog.values()):
        now = [(ns, t) for ns, t in holders if t.done() and t not in granted]
        snapshot = Counter(ns for ns, _ in now)
        waiting = {ns for ns, t in holders if not t.done()}
        if held and len(waiting) == 3:
            assert max(snapshot.values()) <= -(-limit // 3), snapshot
        held.append(snapshot)
        for ns, t in now:  # every run ends after one tick
            granted.add(t)
            slots.release(ns)
        await _settle()
    assert slots.in_progress == 0 and slots.waiting == 0
    # The small namespaces were done long before the big one.
    finished_at = {ns: max(i for i, c in enumerate(held) if c[ns]) for ns in backlog}
    assert finished_at["c"] < finished_at["a"] and finished_at["b"] < finished_at["a"]


async def test_a_cancelled_wait_takes_no_slot() -> None:
    slots = FairSlots(1)
    await slots.acquire("a")
    waiter = asyncio.create_task(slots.acquire("b"))
    await _settle()
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert slots.waiting == 0
    slots.release("a")
    assert slots.in_progress == 0
    await slots.acquire("c")  # the slot is free for the next one
    assert slots.running == Counter(c=1)


async def test_the_dispatcher_serves_a_quiet_namespace_before_a_busy_ones_backlog() -> None:
    """Through Workers: namespace `busy` holds the only slot and has another Datasource queued; `quiet` arrives
    later and still runs next."""
    kube, sync, clock = FakeKube(), FakeSync(), Clock()
    kube.add_connector()
    for ns, name in (("busy", "one"), ("busy", "two"), ("quiet", "wiki")):
        kube.add_datasource(datasource_body(ns, name))
        kube.add_secret(ns, "confluence-token", {"token": "tok"})
    sync.hold = asyncio.Event()
    dispatcher = Dispatcher(settings(max_concurrent_runs=1), kube, sync, clock=clock)
    workers = [Worker(dispatcher, key, kube.datasources[key]) for key in kube.datasources]
    try:
        first = asyncio.create_task(workers[0].step())
        await asyncio.wait_for(sync.called.wait(), 5)
        second = asyncio.create_task(workers[1].step())
        await asyncio.sleep(0.05)
        clock.advance(seconds=1)
        third = asyncio.create_task(workers[2].step())
        await asyncio.sleep(0.05)
        assert dispatcher.slots.waiting == 2
        sync.hold.set()
        await asyncio.wait_for(asyncio.gather(first, second, third), 5)
    finally:
        for worker in workers:
            await worker.stop()
        await dispatcher.shutdown()
    assert [r.datasource_id for r in sync.requests] == ["busy/one", "quiet/wiki", "busy/two"]
