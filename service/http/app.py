"""The Litestar application: wiring only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, get
from litestar.di import Provide

from service.audit.activity import StateCounts
from service.audit.startpoints import Startpoints
from service.audit.window import OpenTally, Rollups
from service.callbacks.worker import courier_for
from service.clientaddress import ClientAddress
from service.http.api import AuditApi
from service.http.auth import Credentials, resolve_credentials
from service.http.callbacks_api import CallbacksController
from service.http.console import CallbackPages, Console, Sources
from service.http.crosssite import origin_of
from service.http.errors import EXCEPTION_HANDLERS
from service.http.headers import secure_headers
from service.http.metrics import Metrics, metrics_endpoint
from service.http.ncentral import NcentralController
from service.http.openapi import openapi_config
from service.http.pages import TicketPages
from service.http.templating import Pages
from service.http.throttle import LoginThrottle
from service.ledger.checkpoints import Checkpointer
from service.ledger.intake import MAX_BODY, AnswerPolicy, Intake
from service.ledger.writer import Ledger
from service.logs import AccessLog
from service.settings import Settings
from service.storage.readpool import ReadPool
from service.storage.textindex import TextIndex
from service.storage.textkeeper import TextKeeper

__all__ = ["create_app"]

log = logging.getLogger("psa_ledger.console")


def create_app(settings: Settings, credentials: Credentials | None = None) -> Litestar:
    """An app serving `settings.db`; credentials default to the settings' (or generated)."""
    ledger = Ledger(settings.db, busy_timeout_ms=settings.busy_timeout_ms)
    reads = ReadPool(settings.db, busy_timeout_ms=settings.busy_timeout_ms)
    intake = Intake(
        ledger, AnswerPolicy(base_url=settings.base_url, create_mode=settings.create_mode)
    )
    metrics = Metrics()
    tally = OpenTally()
    texts = TextIndex()
    pages = Pages()
    sources = Sources(reads, pages, StateCounts(), tally, Rollups(), Startpoints(), texts)
    keeper = TextKeeper(texts, reads)
    ledger.on_commit(metrics.count)
    courier = courier_for(settings, ledger)
    checkpointer = Checkpointer(ledger, settings.db, settings.checkpoint_every)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await ledger.open()
        await checkpointer.start()
        if courier is not None:
            await courier.start()
        warming = asyncio.create_task(_warm(tally, reads), name="psa-ledger-open-tally")
        # The text index is built after that sum: both at once, on two cores, made the
        # first review after a start wait 0.7-1.0 s instead of 0.5-0.6.
        warming.add_done_callback(keeper.start_after)
        try:
            yield
        finally:
            # The keeper's pass is not interrupted: it is waited for. The sum's thread is
            # let go with its task and ends on its own; the pool, closed last, refuses
            # it any read it starts late (and the keeper any start that comes late).
            warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warming
            await asyncio.to_thread(keeper.stop)
            if courier is not None:
                await courier.stop()
            await checkpointer.stop()
            await ledger.close()
            reads.close()

    app = Litestar(
        route_handlers=[
            NcentralController,
            TicketPages,
            Console,
            CallbackPages,
            AuditApi,
            CallbacksController,
            healthz,
            metrics_endpoint,
        ],
        dependencies={
            "ledger": Provide(lambda: ledger, sync_to_thread=False),
            "reads": Provide(lambda: reads, sync_to_thread=False),
            "intake": Provide(lambda: intake, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "metrics": Provide(lambda: metrics, sync_to_thread=False),
            "sources": Provide(lambda: sources, sync_to_thread=False),
            "texts": Provide(lambda: texts, sync_to_thread=False),
        },
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(),
        template_config=pages.config(),
        request_max_body_size=MAX_BODY,
        before_send=[secure_headers],
        # Logging is ours (service.logs, set up by the CLI), not Litestar's default.
        logging_config=None,
    )
    app.state.credentials = credentials or resolve_credentials(settings)
    app.state.intake = intake  # for the ticketing route's fast lane
    app.state.login_throttle = LoginThrottle()
    app.state.client_address = ClientAddress(settings.trusted_networks)
    app.state.public_origin = origin_of(settings.base_url)
    # Outermost, so that the 404s and 405s Litestar answers before any route are logged too.
    app.asgi_handler = AccessLog(app.asgi_handler)
    return app


@get("/healthz", tags=["health"], sync_to_thread=False)
def healthz() -> dict[str, str]:
    """Liveness: the process answers. Needs no credentials."""
    return {"status": "ok"}


async def _warm(tally: OpenTally, reads: ReadPool) -> None:
    """Sum the log for the review page's open counts once, after the start, in a read
    thread: the first review would otherwise wait for it (about a second on a million
    events, docs/audit.md). Only speed is lost if it cannot."""
    try:
        await reads.run(tally.warm)
    except Exception as exc:  # whatever it was, a review will sum what it needs itself
        log.warning("the review page's open counts were not summed ahead: %r", exc)
