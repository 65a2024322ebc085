"""TranscodeWorkerService: the one bidirectional stream each worker keeps open.

The worker says hello; we welcome it and then PUSH assignments as its slots free up (the
dispatcher wakes on runnable tasks and freed slots; the worker never polls). Its heartbeats
and progress extend its leases; results and failures are applied to the DAG if their lease
still holds. When the stream breaks, the worker's tasks go back to PENDING.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc

from streamify.core import errors
from streamify.core.auth import current_principal
from streamify.transcode.orchestrator.dispatch import Orchestrator, WorkerSession
from streamify.v1 import worker_service_pb2 as wapi
from streamify.v1 import worker_service_pb2_grpc

log = logging.getLogger(__name__)


class WorkerStreamService(worker_service_pb2_grpc.TranscodeWorkerServiceServicer):
    def __init__(self, orchestrator: Orchestrator) -> None:
        self._orch = orchestrator

    async def Connect(
        self,
        request_iterator: AsyncIterator[wapi.ConnectRequest],
        context: grpc.aio.ServicerContext[wapi.ConnectRequest, wapi.ConnectResponse],
    ) -> AsyncIterator[wapi.ConnectResponse]:
        principal = current_principal()
        if not principal.is_service:
            raise errors.permission_denied(
                "only transcode workers (service identities) may connect; call with a service token"
            )
        if self._orch.closing:
            raise errors.unavailable("this orchestrator is shutting down; connect to another")
        try:
            first = await anext(request_iterator)
        except StopAsyncIteration:
            return
        if first.WhichOneof("event") != "hello":
            raise errors.invalid_argument("the first message on the stream must be a WorkerHello")
        hello = first.hello
        if not hello.worker_id or len(hello.worker_id) > 128:
            raise errors.invalid_argument([("hello.worker_id", "is required (1-128 characters)")])
        if hello.slots < 1:
            raise errors.invalid_argument([("hello.slots", "must be at least 1")])
        yield self._orch.welcome()
        session = WorkerSession(hello.worker_id, hello.slots)
        self._orch.attach(session)
        reader = asyncio.create_task(self._read(request_iterator, session))
        release = True
        try:
            while True:
                outgoing = asyncio.ensure_future(session.outbox.get())
                done, _ = await asyncio.wait(
                    {outgoing, reader}, return_when=asyncio.FIRST_COMPLETED
                )
                if outgoing not in done:
                    outgoing.cancel()
                    break  # the worker closed its side, or the stream broke
                message = outgoing.result()
                if message is None:  # this replica is shutting down: keep the leases
                    release = False
                    break
                yield message
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            release = release and not self._orch.closing
            await asyncio.shield(self._orch.detach(session, release=release))

    async def _read(
        self, requests: AsyncIterator[wapi.ConnectRequest], session: WorkerSession
    ) -> None:
        try:
            async for message in requests:
                try:
                    await self._handle(session, message)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception(
                        "worker %s: handling %s failed",
                        session.worker_id,
                        message.WhichOneof("event"),
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the stream broke
            log.info("worker %s stream ended: %s", session.worker_id, exc)

    async def _handle(self, session: WorkerSession, message: wapi.ConnectRequest) -> None:
        event = message.WhichOneof("event")
        if event == "heartbeat":
            await self._orch.on_heartbeat(session, message.heartbeat)
        elif event == "progress":
            await self._orch.on_progress(session, message.progress)
        elif event == "result":
            await self._orch.on_result(session, message.result)
        elif event == "failure":
            await self._orch.on_failure(session, message.failure)
        elif event == "hello":
            log.warning("worker %s sent a second hello; ignored", session.worker_id)
