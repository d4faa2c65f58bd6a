"""The N-central command: a request's bytes in, its event and its answer out.

Every request that passes authentication becomes an event, whatever it carried: a body
that is not JSON is recorded as a description of what arrived, so the log answers
"what did N-central send us?" even for the requests we refused.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from service.ledger import outbox
from service.ledger.answers import Answer, identity, problem
from service.ledger.writer import OWN_ACTOR, Batch, Ledger
from statemachine.events import (
    Action,
    Event,
    Fact,
    InvalidRequest,
    Outcome,
    TicketRequest,
    admit_request,
    digest,
    read_json,
    ticket_id_of,
)
from statemachine.projection import Decision, Stream, decide, delivery, external_id_for
from statemachine.ticket import State

__all__ = ["CONNECTION_TEST_ID", "MAX_BODY", "AnswerPolicy", "Intake", "RecordRequest"]

MAX_BODY = 1024 * 1024
CONNECTION_TEST_ID = "PSA-TEST"


class AnswerPolicy(msgspec.Struct, frozen=True):
    """How requests are answered: where tickets live, and whether CREATE waits for a callback."""

    base_url: str
    create_mode: Literal["sync", "async"] = "sync"


class Intake:
    """N-central's requests in: a request's bytes to the ledger, and its answer back.

    The controller's one dependency: Litestar resolves two or more dependencies of a
    handler in an anyio task group, which costs more than the rest of the request here.
    """

    def __init__(self, ledger: Ledger, policy: AnswerPolicy) -> None:
        self.ledger = ledger
        self.policy = policy

    async def receive(self, body: bytes | None, *, actor: str, request_id: str) -> Answer:
        """Record the request and decide its answer; returns once both are durable."""
        command = RecordRequest(self.policy, body, actor=actor, request_id=request_id)
        answer: Answer = await self.ledger.submit(command)
        return answer


class RecordRequest:
    """The ledger command for one request from N-central: parsed on arrival, applied (its
    event recorded and its answer decided) by the writer."""

    __slots__ = (
        "actor",
        "body",
        "error",
        "new_ticket",
        "policy",
        "request",
        "request_id",
        "size",
        "ticket_id",
    )

    def __init__(
        self, policy: AnswerPolicy, body: bytes | None, *, actor: str, request_id: str
    ) -> None:
        self.policy = policy
        self.body = body
        self.actor = actor
        self.request_id = request_id
        self.request: TicketRequest | None = None
        self.error: InvalidRequest | None = None
        self.ticket_id: str | None = None
        self.new_ticket = False
        self.size = len(body) if body is not None else 0
        if body is None:
            self.error = InvalidRequest(
                f"body is larger than {MAX_BODY} bytes", field=None, malformed=False
            )
            return
        try:
            self.request = admit_request(body)
            self.ticket_id = self.request.ncentral_ticket_id
            self.new_ticket = self.request.action == Action.CREATE
        except InvalidRequest as exc:
            # Without its traceback: the frames would hold this object, whose `error` holds
            # them, a cycle that keeps a refused megabyte alive until the collector runs.
            self.error = exc.with_traceback(None)
            self.ticket_id = ticket_id_of(body)

    def apply(self, batch: Batch) -> Answer:
        if self.request is None:
            return self._record_invalid(batch)
        request, ticket_id = self.request, self.request.ncentral_ticket_id
        assert self.body is not None
        payload = self.body.decode()  # admit_request has checked it is UTF-8
        stream = batch.stream(ticket_id)
        request_digest = digest(self.body)
        decision = decide(stream.ticket, request, request_digest)
        answer = self._answer(decision, stream, request, batch.tail.position + 1)
        event = batch.append(
            ticket_id=ticket_id,
            action=request.action,
            outcome=decision.outcome,
            actor=self.actor,
            payload=payload,
            request=request,
            request_digest=request_digest,
            request_id=self.request_id,
            response=answer.encode(),
            state_before=_value(decision.state_before),
            state_after=_value(decision.state_after),
        )
        if decision.outcome is Outcome.ACCEPTED and request.action == Action.CREATE:
            self._created(batch, event)
        return answer

    def _answer(
        self, decision: Decision, stream: Stream, request: TicketRequest, position: int
    ) -> Answer:
        base = self.policy.base_url
        ticket = stream.ticket
        match decision.outcome:
            case Outcome.CONNECTION_TEST:
                return Answer(200, identity(CONNECTION_TEST_ID, base))
            case Outcome.ACCEPTED if request.action == Action.CREATE:
                if self.policy.create_mode == "async":
                    return Answer(202)
                return Answer(200, identity(external_id_for(position), base))
            case Outcome.DUPLICATE:
                assert ticket is not None and ticket.last_accepted is not None
                return Answer.decode(ticket.last_accepted.response or "")
            case Outcome.NOT_FOUND:
                return problem(
                    404,
                    "Unknown ticket",
                    f"no ticket {request.ncentral_ticket_id!r}: it was never created here",
                    ticket=request.ncentral_ticket_id,
                    action=request.action,
                )
            case Outcome.MISMATCH:
                assert ticket is not None
                return problem(
                    409,
                    "Ticket number mismatch",
                    f"psaTicketNumber {request.psa_ticket_number!r} does not match ticket"
                    f" {request.ncentral_ticket_id!r}, which is {ticket.external_ticket_id!r}",
                    field="psaTicketNumber",
                    ticket=request.ncentral_ticket_id,
                )
            case Outcome.REJECTED:
                state = _value(decision.state_before)
                return problem(
                    409,
                    "Action not allowed",
                    f"{request.action} is not allowed on a ticket that is {state}",
                    ticket=request.ncentral_ticket_id,
                    state=state,
                    action=request.action,
                    allowedActions=[a.value for a in decision.allowed],
                )
        assert ticket is not None
        return Answer(200, identity(ticket.external_ticket_id, base))

    def _created(self, batch: Batch, create: Event) -> None:
        """Sync mode: the answer itself delivers the identity, so the ticket opens now.

        Async mode: the callback that will deliver it is owed in this same transaction.
        """
        ticket_id = create.ticket_id
        assert ticket_id is not None
        ticket = batch.stream(ticket_id).ticket
        assert ticket is not None
        if self.policy.create_mode == "async":
            external = ticket.external_ticket_id
            url = identity(external, self.policy.base_url)["ticketUrl"]
            outbox.enqueue(batch, create, external_ticket_id=external, ticket_url=url)
            return
        before, after = delivery(ticket)
        batch.append(
            ticket_id=ticket_id,
            action=Fact.IDENTITY_DELIVERED,
            outcome=Outcome.RECORDED,
            actor=OWN_ACTOR,
            payload=msgspec.json.encode(
                {"via": "response", "createPosition": create.position}
            ).decode(),
            request_id=self.request_id,
            state_before=before,
            state_after=after,
        )

    def _record_invalid(self, batch: Batch) -> Answer:
        error = self.error
        assert error is not None
        if self.body is None:
            answer = problem(413, "Body too large", error.detail, limit=MAX_BODY)
        elif error.malformed:
            answer = problem(400, "Malformed JSON", error.detail)
        else:
            answer = problem(422, "Invalid request", error.detail, field=error.field)
        batch.append(
            ticket_id=self.ticket_id,
            action=Fact.INVALID_REQUEST,
            outcome=Outcome.INVALID,
            actor=self.actor,
            payload=_describe(self.body),
            request_id=self.request_id,
            response=answer.encode(),
        )
        return answer

    def __repr__(self) -> str:
        return f"RecordRequest(request_id={self.request_id!r}, ticket_id={self.ticket_id!r})"


def _describe(body: bytes | None) -> str:
    """The payload of a refused request: a JSON object every reader can decode, as sent;
    anything else (not JSON, not UTF-8, too deep, too large) as a description.

    Never raises: it is how the requests every other check refused still reach the log.
    """
    if body is not None:
        try:
            if isinstance(read_json(body), dict):
                return body.decode()
        except InvalidRequest:
            pass
    description: dict[str, Any] = {"unreadable": True, "bytes": None if body is None else len(body)}
    if body is not None:
        description["sample"] = body[:512].decode("utf-8", errors="replace")
    return msgspec.json.encode(description).decode()


def _value(state: State | None) -> str | None:
    return _STATE_TEXT[state] if state is not None else None


#: `state.value` by a dict lookup: the Enum property costs more than the lookup.
_STATE_TEXT = {state: state.value for state in State}
