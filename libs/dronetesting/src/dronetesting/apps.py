"""Running apps in tests: in process (ASGI, lifespan included) or on a real loopback socket."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from dronetesting.servers import free_port


@contextlib.asynccontextmanager
async def app_client(
    app: FastAPI,
    *,
    base_url: str = "http://testserver",
    headers: dict[str, str] | None = None,
    shutdown_within: float = 20.0,
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling ``app`` in process, with its lifespan run around the test.

    The app must shut down within ``shutdown_within`` seconds once the test is done: a shutdown
    that hangs fails naming where it waited, instead of running into the test's timeout.
    """
    lifespan = app.router.lifespan_context(app)
    lifespan_state = await lifespan.__aenter__()
    try:
        state: dict[str, Any] = dict(lifespan_state or {})

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state)  # what a server does with lifespan state
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url=base_url, headers=headers
        ) as client:
            yield client
    except BaseException:
        if not await lifespan.__aexit__(*sys.exc_info()):
            raise
    else:
        try:
            async with asyncio.timeout(shutdown_within):
                await lifespan.__aexit__(None, None, None)
        except TimeoutError as exc:
            raise AssertionError(
                f"the app did not shut down within {shutdown_within:g}s (see the traceback "
                "above for where it waited)"
            ) from exc


@contextlib.asynccontextmanager
async def running_server(app: Any, *, port: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in this event loop; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="none",
        # A test's client keeps its connections between calls, sometimes idle for longer than
        # uvicorn's 5 s default (a child process starting on a slow machine): the server closing
        # one just as the client reuses it is a ReadError that has nothing to do with the test.
        timeout_keep_alive=300,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # raises why it stopped
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)


@contextlib.contextmanager
def serving_in_thread(app: Any, *, ready_within: float = 10.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 from a thread of its own; yields its base URL.

    For synchronous tests (the contract fuzz) that need a real server beside the app under test;
    the app's lifespan runs in the thread's event loop.
    """
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_within
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, f"uvicorn did not start in {ready_within:g}s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


async def wait_ready(
    target: httpx.AsyncClient | str,
    *,
    within: float = 10.0,
    status: int = 200,
    path: str = "/readyz",
    process: asyncio.subprocess.Process | None = None,
) -> httpx.Response:
    """Poll ``path`` until it answers ``status``; returns that answer.

    ``target`` is a client (in process or not) or a base URL (connection errors are then waited
    out). Fails naming the last answer when ``within`` seconds pass, or at once when ``process``
    (the server being waited for) has exited.
    """
    async with contextlib.AsyncExitStack() as stack:
        if isinstance(target, str):
            client = httpx.AsyncClient(base_url=target, timeout=5)
            await stack.enter_async_context(client)
        else:
            client = target
        deadline = time.monotonic() + within
        last = "no answer"
        while True:
            if process is not None and process.returncode is not None:
                raise AssertionError(f"exited with {process.returncode} before it was ready")
            try:
                response = await client.get(path)
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                if response.status_code == status:
                    return response
                last = f"{response.status_code} {response.text}"
            if time.monotonic() >= deadline:
                raise AssertionError(f"{path} did not answer {status} in {within:g}s: {last}")
            await asyncio.sleep(0.05)


async def start_service_process(
    module: str, env: dict[str, str], log: Path, *, port: int, ready_within: float = 30.0
) -> asyncio.subprocess.Process:
    """Run ``python -m <module>`` as a user would and wait until its ``/readyz`` answers 200.

    Output goes to ``log``; when the process exits or time runs out, the assertion shows it.
    """
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", within=ready_within, process=process)
    except AssertionError as exc:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise AssertionError(f"{module} not ready: {exc}\n{_output(log)}") from None
    return process


def _output(log: Path) -> str:
    """What a failed process wrote (read only to explain a failure)."""
    return log.read_text(errors="replace")


def serve_bare_json(port: int, body: bytes) -> None:
    """Answer every request with ``body`` (JSON) from a bare ASGI app, blocking until stopped.

    The baseline the benchmarks compare with: uvicorn with the services' flags (uvloop, httptools,
    one worker) and no framework at all.
    """
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        workers=1,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
    )
