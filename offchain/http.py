"""The worker's HTTP face on loopback: /healthz, /readyz, /metrics (Prometheus) and the dashboard's pages."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from offchain.dashboard import DashboardConfig, add_dashboard
from offchain.dashboard.sources import Source
from offchain.pipeline.worker import Worker

READY_STALL_S = 120.0


async def readiness(worker: Worker) -> tuple[bool, dict[str, Any]]:
    """Ready = started, the store answers, no stage is failing, and blocks are flowing or we are caught up."""
    reasons: list[str] = []
    if not worker.started:
        reasons.append("worker not started")
    try:
        cp = await worker.store.checkpoint()
    except Exception as exc:  # the store itself failing is exactly what readiness must report
        cp = None
        reasons.append(f"store: {exc}")
    for stage, err in sorted(worker.last_error.items()):
        reasons.append(f"{stage}: {err}")
    stalled = time.monotonic() - worker.last_progress > READY_STALL_S and not worker.caught_up
    if stalled:
        reasons.append(f"no block written for {READY_STALL_S:.0f} s and not caught up")
    body = {
        "ready": not reasons,
        "checkpoint": cp[0] if cp else None,
        "finalized_head": worker.head,
        "caught_up": worker.caught_up,
        "reasons": reasons,
    }
    return not reasons, body


def dashboard_config(worker: Worker) -> DashboardConfig:
    """The dashboard over the worker's own database and catalogue, with its live state and verified audio."""

    async def live() -> dict[str, Any]:
        ok, body = await readiness(worker)
        return {**body, "ready": ok}

    path = Path(worker.store.path)
    return DashboardConfig(
        Source("worker", path, None, path.parent / "catalogue"),
        epoch_blocks=worker.opt.epoch_blocks,
        live=live,
        fetch_audio=functools.partial(worker.fetcher.fetch, max_bytes=worker.opt.max_audio_bytes),
    )


def make_app(worker: Worker) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        # Liveness only: the event loop answers. Outages show in /readyz, never as a restart-worthy failure.
        return web.json_response({"ok": True})

    async def readyz(_: web.Request) -> web.Response:
        ok, body = await readiness(worker)
        return web.json_response(body, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=worker.metrics.render(), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics),
        ]
    )
    add_dashboard(app, dashboard_config(worker))
    return app


async def start_http(worker: Worker, host: str, port: int) -> web.AppRunner:
    """Serve the app; `port` 0 picks a free one (read it back from `bound_port(runner)`)."""
    # Any address the configuration accepts (offchain/config.py checks it is an IP): in a container the
    # endpoints must be reachable on the compose network for Prometheus and the healthchecks; everything
    # served is read-only.
    runner = web.AppRunner(make_app(worker), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for addr in runner.addresses:
        return int(addr[1])
    raise RuntimeError("HTTP server is not listening")
