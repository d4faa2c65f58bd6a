"""Operator API for the outbox: list the callbacks still owed, and retry them by hand."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post

from service.callbacks.retry import (
    AlreadyDelivered,
    NoCallback,
    find,
    listed,
    retry_callback,
    retry_dead,
)
from service.http import openapi
from service.http.auth import operator_guard
from service.http.crosssite import same_origin_guard
from service.http.responses import problem_response
from service.ledger.outbox import Callback, Status
from service.ledger.writer import Ledger
from service.storage.readpool import ReadPool

__all__ = ["CallbackList", "CallbacksController"]


class CallbackList(msgspec.Struct, frozen=True):
    callbacks: list[Callback]


class CallbacksController(Controller):
    path = "/api/callbacks"
    # A cross-site request is refused before its credentials are even looked at.
    guards = [same_origin_guard, operator_guard]  # noqa: RUF012  (read as a class attribute)
    tags = ["Callbacks"]  # noqa: RUF012
    security = openapi.OPERATOR_SECURITY

    @get(
        "/",
        summary="Callbacks not yet delivered: pending and dead-lettered",
        responses=openapi.CALLBACK_LIST_ANSWERS,
        operation_class=openapi.documented(),
    )
    async def list_callbacks(
        self, reads: ReadPool, status: Literal["pending", "dead"] | None = None
    ) -> CallbackList:
        wanted = Status(status) if status is not None else None
        return CallbackList(await reads.run(listed, wanted))

    @get(
        "/{ncentral_ticket_id:str}",
        summary="The callback owed for one ticket",
        responses=openapi.CALLBACK_ANSWERS,
        operation_class=openapi.documented(),
    )
    async def show_callback(self, ncentral_ticket_id: str, reads: ReadPool) -> Response[Any]:
        try:
            return Response(await reads.run(find, ncentral_ticket_id))
        except NoCallback as exc:
            return problem_response(404, "No callback", str(exc), ticket=ncentral_ticket_id)

    @post(
        "/{ncentral_ticket_id:str}/retry",
        status_code=202,
        summary="Try a pending or dead-lettered callback again now, on a fresh schedule",
        responses=openapi.CALLBACK_RETRY_ANSWERS,
        operation_class=openapi.documented(body=openapi.RETRY_BODY),
    )
    async def retry_callback(
        self,
        ncentral_ticket_id: str,
        request: Request[Any, Any, Any],
        ledger: Ledger,
        reads: ReadPool,
    ) -> Response[Any]:
        actor = request.state.actor
        try:
            callback = await retry_callback(ledger, reads, ncentral_ticket_id, actor)
        except NoCallback as exc:
            return problem_response(404, "No callback", str(exc), ticket=ncentral_ticket_id)
        except AlreadyDelivered as exc:
            return problem_response(
                409, "Callback already delivered", str(exc), ticket=ncentral_ticket_id
            )
        return Response(callback, status_code=202)

    @post(
        "/dead/retry",
        status_code=202,
        summary="Try every dead-lettered callback again now",
        responses=openapi.DEAD_RETRY_ANSWERS,
        operation_class=openapi.documented(body=openapi.RETRY_BODY),
    )
    async def retry_dead(
        self, request: Request[Any, Any, Any], ledger: Ledger, reads: ReadPool
    ) -> CallbackList:
        return CallbackList(await retry_dead(ledger, reads, request.state.actor))
