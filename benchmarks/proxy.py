"""A loopback TCP proxy that delays traffic, to stand in for a database across a network.

It listens on 127.0.0.1 (an ephemeral port) and forwards each connection to the server, over
TCP or, for the embedded server, its unix socket. Each chunk is held for `delay` seconds in
each direction, without slowing the chunks behind it, so a round trip costs about
``2 * delay`` more. The event loop uses ``select()``, whose timeout has microsecond
resolution (epoll rounds every wait up to a whole millisecond). It runs in a daemon thread
and shuts itself down after `max_seconds` at the latest.

The benchmark runs that thread in a helper process of its own (`ProxyProcess`): in the
client's process it would wait for the GIL behind the very client code being measured,
and its delay would grow with the client's load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from psycopg.conninfo import make_conninfo

from checkpoint_pg._runtime.dsn import validate_dsn

__all__ = ["DelayProxy", "ProxyProcess", "Upstream", "upstream_of"]

_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Upstream:
    """Where the proxy forwards to: a unix socket path, or a TCP host and port."""

    unix_path: str | None = None
    host: str | None = None
    port: int = 5432


def upstream_of(dsn: str) -> Upstream:
    """The server `dsn` connects to (its first host, if it lists several)."""
    params = validate_dsn(dsn)
    host = params.get("host", "").split(",")[0] or params.get("hostaddr", "").split(",")[0]
    port = int((params.get("port") or "5432").split(",")[0])
    if not host or host.startswith(("/", "@")):
        directory = host or "/var/run/postgresql"
        return Upstream(unix_path=str(Path(directory) / f".s.PGSQL.{port}"))
    return Upstream(host=host, port=port)


class DelayProxy:
    """Forward 127.0.0.1:<port> to `upstream`, adding `delay` seconds each way.

    Use it as a context manager; `dsn_for(dsn)` rewrites a DSN to go through it.
    """

    def __init__(self, upstream: Upstream, *, delay: float = 0.0005, max_seconds: float = 900):
        self.upstream = upstream
        self.delay = delay
        self.max_seconds = max_seconds
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.connections = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> DelayProxy:
        """Start listening; return once the port is known."""
        self._thread = threading.Thread(target=self._main, name="bench-delay-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the benchmark's TCP proxy did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"the benchmark's TCP proxy did not start: {self._error}")
        return self

    def stop(self) -> None:
        """Close the listener and every forwarded connection, and wait for the thread."""
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def dsn_for(self, dsn: str) -> str:
        """`dsn` rewritten to connect through this proxy (same database, user, options)."""
        return _rewrite(dsn, self.port)

    # -- the loop thread -----------------------------------------------------------------------

    def _main(self) -> None:
        loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(), or lost once the run is over
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self._forward(reader, writer)
            except asyncio.CancelledError:
                pass  # shutting down: the task ends quietly
            finally:
                tasks.discard(task)

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        deadline = time.monotonic() + self.max_seconds
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), timeout=deadline - time.monotonic())
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream.unix_path is not None:
            return await asyncio.open_unix_connection(self.upstream.unix_path)
        assert self.upstream.host is not None
        return await asyncio.open_connection(self.upstream.host, self.upstream.port)

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await self._open_upstream()
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(
                self._pipe(client_reader, server_writer),
                self._pipe(server_reader, client_writer),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in (client_writer, server_writer):
                writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy `reader` to `writer`, each chunk leaving `delay` seconds after it arrived."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError):
                if writer.can_write_eof():
                    writer.write_eof()

        sender = asyncio.ensure_future(send())
        try:
            while data := await reader.read(_CHUNK):
                queue.put_nowait((loop.time() + self.delay, data))
        finally:
            queue.put_nowait((loop.time(), b""))
            await sender


def _rewrite(dsn: str, port: int) -> str:
    return make_conninfo(dsn, host="127.0.0.1", hostaddr="", port=str(port))


class ProxyProcess:
    """A `DelayProxy` in a helper process of its own (see the module docstring for why).

    The helper exits when this object stops it, when the parent process goes away (its
    standard input closes), or after `max_seconds`, whichever comes first.
    """

    def __init__(self, upstream: Upstream, *, delay: float = 0.0005, max_seconds: float = 900):
        self.upstream = upstream
        self.delay = delay
        self.max_seconds = max_seconds
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> ProxyProcess:
        """Start the helper; return once it listens."""
        args = [sys.executable, "-m", "benchmarks.proxy", "--delay", repr(self.delay)]
        args += ["--max-seconds", repr(self.max_seconds)]
        if self.upstream.unix_path is not None:
            args += ["--unix", self.upstream.unix_path]
        else:
            args += ["--host", str(self.upstream.host), "--port", str(self.upstream.port)]
        self._proc = subprocess.Popen(  # noqa: S603 - our own module, argv list, no shell
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError("the benchmark's TCP proxy did not start")
        self.port = int(line)
        return self

    def stop(self) -> None:
        """Stop the helper and wait for it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> ProxyProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def dsn_for(self, dsn: str) -> str:
        """`dsn` rewritten to connect through the helper."""
        return _rewrite(dsn, self.port)


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="loopback TCP proxy that adds delay")
    parser.add_argument("--delay", type=float, default=0.0005)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--unix")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int, default=5432)
    args = parser.parse_args(argv)
    upstream = Upstream(unix_path=args.unix, host=args.host, port=args.port)
    with DelayProxy(upstream, delay=args.delay, max_seconds=args.max_seconds) as proxy:
        print(proxy.port, flush=True)
        # Until the parent closes our stdin (or dies), bounded by the proxy's own lifetime.
        waiter = threading.Thread(target=sys.stdin.read, daemon=True)
        waiter.start()
        waiter.join(timeout=args.max_seconds)


if __name__ == "__main__":
    _main()
