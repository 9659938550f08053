"""Reading back what landed on the bus, for end-to-end counts."""

from __future__ import annotations

import nats

from normalize import codec
from normalize.records import Record


async def stream_records(url: str, stream: str = "TICKS") -> list[Record]:
    client = await nats.connect(url)
    js = client.jetstream()
    info = await js.stream_info(stream)
    out: list[Record] = []
    sub = await js.pull_subscribe("ticks.>", durable=None, stream=stream)
    remaining = info.state.messages
    while remaining:
        for message in await sub.fetch(min(remaining, 500), timeout=5):
            out.extend(codec.decode(message.data)[1])
            await message.ack()
            remaining -= 1
    await client.close()
    return out
