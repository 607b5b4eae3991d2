"""A TCP proxy that adds latency: every chunk, in both directions, is delivered `delay_s` after
it arrived (tc/netem is not available on these machines).

Chunks keep their order and are not serialised behind each other's delay: a chunk that arrives
while an earlier one is still held leaves `delay_s` after its own arrival, so the proxy adds a
fixed one-way latency, not a bandwidth limit. Round-trip time = 2 * delay_s.

The kernel completes the client's TCP handshake at once, so the handshake's round trip is paid
on the first bytes instead: nothing the client sends is delivered before one round trip after
it connected plus the one-way delay, as over a real link. A connection that sends nothing
(a bare TCP probe) costs no round trip here.

`exchanges` counts, over all connections, each time a client speaks after silence or after the
server spoke (a request turn), plus one per connection: the round trips the traffic needed if
nothing ran in parallel, a figure that does not depend on the machine's load.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

HOST = "127.0.0.1"
CHUNK = 65536


class DelayProxy:
    """Listens on 127.0.0.1:port and relays each connection to 127.0.0.1:upstream, delayed.
    Runs its own event loop in a daemon thread; `stop` closes the listener and the loop."""

    def __init__(self, port: int, upstream: int, delay_s: float) -> None:
        self.port = port
        self.upstream = upstream
        self.delay_s = delay_s
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self.exchanges = 0
        self.connections = 0
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._server is None:
            raise RuntimeError(f"the delay proxy on port {port} did not start")

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        with contextlib.suppress(OSError):
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._relay, HOST, self.port)
            )
        ready.set()
        self._loop.run_forever()
        relays = asyncio.all_tasks(self._loop)
        for task in relays:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*relays, return_exceptions=True))
        self._loop.close()

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        handshake_done = self._loop.time() + 2 * self.delay_s
        self.connections += 1
        self.exchanges += 1
        turn = ["server"]  # who spoke last on this connection
        try:
            server_in, server_out = await asyncio.open_connection(HOST, self.upstream)
        except OSError:
            client_out.close()
            return
        # Cancelled when the proxy stops: ended quietly, as Python 3.11's start_server cannot
        # take a cancelled connection handler.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(
                self._pipe(client_in, server_out, handshake_done, turn, "client"),
                self._pipe(server_in, client_out, 0.0, turn, "server"),
            )

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        not_before: float,
        turn: list[str],
        side: str,
    ) -> None:
        """Copy source to sink, each chunk delay_s after it was read (or after `not_before`,
        if later); close sink at the end. Counts the client's turns."""
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._deliver(held, sink))
        data = b"."
        while data:
            with contextlib.suppress(OSError):
                data = b""
                data = await source.read(CHUNK)
            if data and turn[0] != side:
                turn[0] = side
                self.exchanges += side == "client"
            held.put_nowait((max(self._loop.time(), not_before) + self.delay_s, data))
        await sender

    async def _deliver(
        self, held: asyncio.Queue[tuple[float, bytes]], sink: asyncio.StreamWriter
    ) -> None:
        try:
            with contextlib.suppress(OSError):
                while True:
                    due, data = await held.get()
                    await asyncio.sleep(max(0.0, due - self._loop.time()))
                    if not data:
                        break
                    sink.write(data)
                    await sink.drain()
        finally:
            sink.close()

    def stop(self) -> None:
        """Stop listening, cancel the open relays and close the loop."""

        def close() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(close)
        self._thread.join(10)
