"""A scriptable HTTPS admission webhook for tests: it records every AdmissionReview it is sent
and answers what the test says (a patch, a denial, a wrong uid, a delay, a status code)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from berth.cluster.tls import generate

JSON = dict[str, Any]
Answer = Callable[[JSON], tuple[int, Any, float]]  # review -> (status, body, delay seconds)


def allow(patch: list[JSON] | None = None) -> Answer:
    def answer(review: JSON) -> tuple[int, Any, float]:
        response: JSON = {"uid": review["request"]["uid"], "allowed": True}
        if patch:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
        return (
            200,
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response},
            0.0,
        )

    return answer


def deny(status: JSON | None) -> Answer:
    def answer(review: JSON) -> tuple[int, Any, float]:
        response: JSON = {"uid": review["request"]["uid"], "allowed": False}
        if status is not None:
            response["status"] = status
        return (
            200,
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response},
            0.0,
        )

    return answer


class HookServer:
    def __init__(self, directory: Path) -> None:
        self.certs = generate(directory=directory, hosts=["127.0.0.1"])
        self.reviews: list[JSON] = []
        self.answer: Answer = allow()
        self.port = 0
        self.settle = 0.0  # seconds the server needs to pick a new configuration up
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/mutate"

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.certs.ca_pem).decode()

    async def _handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        review["_query"] = dict(request.query)
        self.reviews.append(review)
        status, body, delay = self.answer(review)
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, body=json.dumps(body), content_type="application/json")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/mutate", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.certs.server_context())
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def configuration(self, name: str = "test-hooks", **hook: Any) -> JSON:
        """A MutatingWebhookConfiguration of one webhook calling this server."""
        webhook: JSON = {
            "name": "pods.test.berth.io",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
            "clientConfig": {"url": self.url, "caBundle": self.ca_bundle},
            "rules": [
                {
                    "operations": ["CREATE"],
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "resources": ["pods"],
                }
            ],
            **hook,
        }
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [webhook],
        }


@contextmanager
def hook_server(directory: Path) -> Iterator[HookServer]:
    server = HookServer(directory)
    thread = threading.Thread(target=server._loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server._start(), server._loop).result(10)
    try:
        yield server
    finally:
        if server._runner is not None:
            asyncio.run_coroutine_threadsafe(server._runner.cleanup(), server._loop).result(10)
        server._loop.call_soon_threadsafe(server._loop.stop)
        thread.join(10)
        server._loop.close()
