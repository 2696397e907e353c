"""The admin endpoint for fault injection, `/berth-admin/faults`, mounted only when enabled.

GET shows the rules; PUT replaces them (`{"rules": [{"verb", "resource", "rate", "status",
"latency"}], "expireNextWatches": N}`); POST `/berth-admin/faults/drop-watches` ends every open
watch; POST `/berth-admin/faults/expire-next-watch` makes the next watch get `410 Gone`.
"""

from __future__ import annotations

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from berth.cluster.errors import bad_request, unauthorized
from berth.cluster.faults import Faults
from berth.cluster.handlers.rest import error_response
from berth.cluster.store import Store

PREFIX = "/berth-admin/faults"


def add_admin_routes(
    app: web.Application, *, faults: Faults, store: Store, token: str | None
) -> None:
    """Mount the fault-injection endpoints on `app` (behind the bearer token, if one is set)."""

    def guarded(handler: Handler) -> Handler:
        async def serve(request: web.Request) -> web.StreamResponse:
            if token is not None and request.headers.get("Authorization") != f"Bearer {token}":
                return error_response(unauthorized())
            return await handler(request)

        return serve

    async def show(_request: web.Request) -> web.Response:
        return web.json_response(faults.to_json())

    async def replace(request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            if not isinstance(body, dict):
                raise ValueError("body must be an object")
            faults.update_from_json(body)
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            return error_response(bad_request(f"invalid fault configuration: {exc}"))
        return web.json_response(faults.to_json())

    async def drop(_request: web.Request) -> web.Response:
        return web.json_response({"dropped": store.close_watches()})

    async def expire(_request: web.Request) -> web.Response:
        faults.expire_next_watch()
        return web.json_response(faults.to_json())

    app.router.add_get(PREFIX, guarded(show))
    app.router.add_put(PREFIX, guarded(replace))
    app.router.add_post(PREFIX, guarded(replace))
    app.router.add_post(PREFIX + "/drop-watches", guarded(drop))
    app.router.add_post(PREFIX + "/expire-next-watch", guarded(expire))
