"""A real uvicorn on 127.0.0.1, in a thread with its own event loop, and a loop-stall ticker."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import uvicorn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@attrs.define
class LiveServer:
    """A running server: its URL, and the longest time its loop failed to run the ticker."""

    url: str
    max_stall: float = 0.0
    ticks: int = 0
    measuring: bool = False

    def reset_stall(self) -> None:
        self.max_stall = 0.0
        self.ticks = 0


async def _ticker(live: LiveServer, period: float) -> None:
    # Sleeps `period` again and again; any lateness beyond it is time the loop was blocked.
    while True:
        before = time.perf_counter()
        await asyncio.sleep(period)
        late = time.perf_counter() - before - period
        if live.measuring:
            live.ticks += 1
            live.max_stall = max(live.max_stall, late)


@contextlib.contextmanager
def live_server(app: Any, *, tick: float = 0.005) -> Iterator[LiveServer]:
    """Serve ``app`` on 127.0.0.1 until the block ends."""
    port = free_port()
    live = LiveServer(url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    async def main() -> None:
        ticker = asyncio.create_task(_ticker(live, tick))
        try:
            await server.serve()
        finally:
            ticker.cancel()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 (reported to the test below)
            failure.append(exc)

    thread = threading.Thread(target=run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if failure or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start: {failure!r}")
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.01)
    try:
        yield live
    finally:
        server.should_exit = True
        thread.join(timeout=20)
