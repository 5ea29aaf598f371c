"""The dashboard's aiohttp routes: one handler per page, rendered by Jinja2 templates, assets served locally.

`add_dashboard(app, config)` mounts the pages on an existing aiohttp application (the worker's, see
offchain/http.py); `dashboard_app(config)` makes a stand-alone one (`ami dashboard`). A page that asks for
something absent answers 404, a malformed parameter 400, an unreadable database 503: each as a page that says
what went wrong, never a traceback, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly
import structlog
from aiohttp import web

from offchain.dashboard import charts
from offchain.dashboard.embedding_map import MapCache, MapData
from offchain.dashboard.queries import PER_PAGE, TRACK_SORTS, BadRequest, NotFound, Queries, short
from offchain.dashboard.sources import DashboardError, Source, ensure_indexes, resolve_source
from offchain.dashboard.templating import components, template_env
from offchain.ipfs.client import IpfsClient
from offchain.pipeline.adapters import IpfsContentFetcher

log = structlog.get_logger("ami.dashboard")

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
AUDIO_TYPES = (
    (b"RIFF", "audio/wav"),
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
)

Live = Callable[[], Awaitable[Mapping[str, Any]]]
FetchAudio = Callable[[str], Awaitable[bytes]]

__all__ = ["DashboardConfig", "DashboardError", "add_dashboard", "dashboard_app", "resolve_source"]


@dataclass
class DashboardConfig:
    """What the dashboard reads (`source`) and, when it runs inside the worker, its live state and IPFS.

    `live` answers {"ready", "finalized_head", "caught_up", "reasons"}; `fetch_audio(cid)` returns bytes
    verified against the CID (the worker's content fetcher, or an IPFS client for `ami dashboard`).
    """

    source: Source
    epoch_blocks: int | None = None
    live: Live | None = None
    fetch_audio: FetchAudio | None = None
    ipfs_api_url: str | None = None
    max_audio_bytes: int = 50 * 1024 * 1024


def _int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {raw!r}") from None


def _pages(total: int, page: int) -> dict[str, int]:
    last = max(1, -(-total // PER_PAGE))
    return {
        "page": page,
        "last": last,
        "total": total,
        "first_row": (page - 1) * PER_PAGE + 1 if total else 0,
    }


class Dashboard:
    """The running dashboard: its queries, map cache, templates and handlers."""

    def __init__(self, config: DashboardConfig) -> None:
        self.config = config
        self.env = template_env()
        self.q: Queries | None = None
        self.maps = MapCache(config.source.catalogue)
        self._map_task: asyncio.Task[Any] | None = None
        self._ipfs: Any = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self, _app: web.Application) -> None:
        main = self.config.source.main
        if main is not None and main.is_file():
            why = await asyncio.to_thread(ensure_indexes, main)
            if why is not None:
                log.warning("dashboard.no_indexes", db=str(main), error=why)
        self.q = await Queries.open(self.config.source, self.config.epoch_blocks)
        if self.config.fetch_audio is None and self.config.ipfs_api_url:
            self._ipfs = IpfsClient(self.config.ipfs_api_url)
            fetcher = IpfsContentFetcher(self._ipfs)
            self.config.fetch_audio = functools.partial(fetcher.fetch, max_bytes=self.config.max_audio_bytes)
        # Precompute the map in the background so the first visit finds it ready.
        self._kick_map()

    async def stop(self, _app: web.Application) -> None:
        if self._map_task is not None:
            self._map_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._map_task
        if self._ipfs is not None:
            await self._ipfs.close()
        if self.q is not None:
            await self.q.close()

    @property
    def queries(self) -> Queries:
        if self.q is None:
            raise DashboardError("the dashboard is not started")
        return self.q

    async def _build_map(self) -> MapData | None:
        tracks = await self.queries.track_points()
        e = await self.queries.epoch_blocks()
        return await asyncio.to_thread(self.maps.refresh, tracks, e, charts.map_chart)

    def _kick_map(self) -> asyncio.Task[Any] | None:
        """Start rebuilding the map in the background when the catalogue changed (one build at a time)."""
        if self.maps.catalogue_dir is None or not self.queries.has_main or not self.maps.stale():
            return None
        if self._map_task is None or self._map_task.done():
            self._map_task = asyncio.create_task(self._build_map())
        return self._map_task

    async def _map(self) -> MapData | None:
        """The latest map built; only the very first one is waited for. A newer catalogue is picked up by a
        background rebuild while pages keep showing the previous map (at 100,000 tracks a build takes
        seconds: no page waits for it)."""
        task = self._kick_map()
        current = self.maps.current()
        if current is None and task is not None:
            return await asyncio.shield(task)
        return current

    # -- rendering -------------------------------------------------------------------------------------------

    def render(self, template: str, request: web.Request, status: int = 200, **ctx: Any) -> web.Response:
        page = self.env.get_template(template).render(
            path=request.path, source=self.config.source, has_main=self.queries.has_main, **ctx
        )
        return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")

    def page(
        self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Answer a handler's known failures with an error page of the right status."""

        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except NotFound as exc:
                return self.render("error.html", request, 404, title="Not found", message=str(exc))
            except BadRequest as exc:
                return self.render("error.html", request, 400, title="Bad request", message=str(exc))
            except (sqlite3.Error, DashboardError) as exc:
                log.warning("dashboard.db_error", path=request.path, error=str(exc))
                return self.render(
                    "error.html",
                    request,
                    503,
                    title="Database unavailable",
                    message=f"the database could not be read: {exc}",
                )
            except web.HTTPException:
                raise
            except Exception as exc:  # a bug in one page must not take the dashboard (or the worker) down
                log.exception("dashboard.page_failed", path=request.path)
                return self.render(
                    "error.html", request, 500, title="Page failed", message=f"{type(exc).__name__}: {exc}"
                )

        return wrapped

    # -- pages -----------------------------------------------------------------------------------------------

    async def overview(self, request: web.Request) -> web.Response:
        q = self.queries
        if not q.has_main:
            raise web.HTTPFound("/findings")
        live = dict(await self.config.live()) if self.config.live else None
        cp = await q.checkpoint()
        epochs = await q.epochs(limit=8)
        return self.render(
            "overview.html",
            request,
            title="Overview",
            live=live,
            checkpoint=cp,
            lag=None
            if not live or live.get("finalized_head") is None or cp is None
            else live["finalized_head"] - cp,
            tracks=await q.track_status_counts(),
            payouts=await q.payout_status_counts(),
            totals=await q.totals(),
            epochs=epochs,
            chart=charts.epochs_chart(epochs) if epochs else None,
            audit=await q.audit_counts() if q.has_audit else None,
        )

    async def tracks(self, request: web.Request) -> web.Response:
        qs = request.query.get("q", "")
        sort = request.query.get("sort", "token")
        order = request.query.get("order", "asc")
        page = _int(request, "page", 1)
        rows, total = await self.queries.tracks(qs, sort, order, page)
        return self.render(
            "tracks.html",
            request,
            title="Tracks",
            rows=rows,
            q=qs,
            sort=sort,
            order=order,
            sorts=list(TRACK_SORTS),
            pages=_pages(total, page),
        )

    async def track(self, request: web.Request) -> web.Response:
        token = _path_int(request, "token")
        t = await self.queries.track(token)
        m = await self._map()
        comps = components(t["details"])
        nearest = m.nearest(token, 6) if m is not None else []
        return self.render(
            "track.html",
            request,
            title=f"Track #{token}",
            t=t,
            comps=comps,
            chart=charts.components_chart(comps) if comps else None,
            nearest=nearest,
            other={k: v for k, v in t["details"].items() if k not in comps and k != "matches"},
            audio=self.config.fetch_audio is not None,
        )

    async def audio(self, request: web.Request) -> web.StreamResponse:
        token = _path_int(request, "token")
        t = await self.queries.track(token)
        if self.config.fetch_audio is None:
            raise NotFound("no IPFS node is configured: start `ami dashboard` with --ipfs-api-url")
        try:
            data = await self.config.fetch_audio(t["audio_cid"])
        except Exception as exc:  # any IPFS failure (missing, mismatch, node down) is shown, never raised
            return web.Response(
                status=502, text=f"cannot stream {t['audio_cid']}: {type(exc).__name__}: {exc}"
            )
        ctype = next((c for magic, c in AUDIO_TYPES if data.startswith(magic)), "application/octet-stream")
        return web.Response(body=data, content_type=ctype, headers={"Cache-Control": "private, max-age=3600"})

    async def epochs(self, request: web.Request) -> web.Response:
        eps = await self.queries.epochs()
        return self.render(
            "epochs.html",
            request,
            title="Epochs",
            epochs=eps,
            chart=charts.epochs_chart(eps) if eps else None,
        )

    async def epoch(self, request: web.Request) -> web.Response:
        e = _path_int(request, "epoch")
        page = _int(request, "page", 1)
        ep = await self.queries.epoch(e)
        rows, total = await self.queries.epoch_payouts(e, page)
        return self.render(
            "epoch.html",
            request,
            title=f"Epoch {e}",
            ep=ep,
            rows=rows,
            pages=_pages(total, page),
            chart=charts.budget_chart(ep),
        )

    async def accounts(self, request: web.Request) -> web.Response:
        qs = request.query.get("q", "")
        page = _int(request, "page", 1)
        rows, total = await self.queries.accounts(qs, page)
        return self.render(
            "accounts.html", request, title="Accounts", rows=rows, q=qs, pages=_pages(total, page)
        )

    async def account(self, request: web.Request) -> web.Response:
        a = await self.queries.account(request.match_info["account"])
        return self.render(
            "account.html",
            request,
            title=f"Account {short(a['account'])}",
            a=a,
            chart=charts.earnings_chart(a["by_epoch"]) if a["by_epoch"] else None,
        )

    async def map_page(self, request: web.Request) -> web.Response:
        m = await self._map()
        return self.render(
            "map.html",
            request,
            title="Map",
            m=m,
            has_catalogue=self.maps.catalogue_dir is not None,
        )

    async def map_json(self, request: web.Request) -> web.Response:
        m = await self._map()
        if m is None or m.error or m.figure is None:
            raise NotFound("no catalogue map" + (f": {m.error}" if m and m.error else ""))
        return web.Response(text=m.figure, content_type="application/json")

    async def distributions(self, request: web.Request) -> web.Response:
        h = await self.queries.histograms()
        return self.render(
            "distributions.html",
            request,
            title="Distributions",
            h=h,
            novelty=charts.histogram_chart("novelty", h["novelty"], h["bin_bp"]) if h["novelty"] else None,
            quality=charts.histogram_chart("quality", h["quality"], h["bin_bp"]) if h["quality"] else None,
        )

    async def findings(self, request: web.Request) -> web.Response:
        page = _int(request, "page", 1)
        rows, total = await self.queries.findings(page)
        return self.render(
            "findings.html",
            request,
            title="Findings",
            rows=rows,
            pages=_pages(total, page),
            counts=await self.queries.audit_counts(),
            has_audit=self.queries.has_audit,
            on_chain=await self.queries.challenges_on_chain(),
        )

    async def evidence(self, request: web.Request) -> web.Response:
        doc = await self.queries.evidence(request.query.get("subject", ""))
        return web.Response(
            text=json.dumps(doc, indent=2, sort_keys=True), content_type="application/json", charset="utf-8"
        )

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = PLOTLY_JS if name == "plotly.min.js" else STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})

    def routes(self) -> list[web.RouteDef]:
        p = self.page
        return [
            web.get("/", p(self.overview)),
            web.get("/tracks", p(self.tracks)),
            web.get("/tracks/{token}", p(self.track)),
            web.get("/tracks/{token}/audio", p(self.audio)),
            web.get("/epochs", p(self.epochs)),
            web.get("/epochs/{epoch}", p(self.epoch)),
            web.get("/accounts", p(self.accounts)),
            web.get("/accounts/{account}", p(self.account)),
            web.get("/map", p(self.map_page)),
            web.get("/map.json", p(self.map_json)),
            web.get("/distributions", p(self.distributions)),
            web.get("/findings", p(self.findings)),
            web.get("/findings/evidence.json", p(self.evidence)),
            web.get("/static/{name}", self.static),
        ]


def _path_int(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise BadRequest(f"{name} must be a whole number, not {raw!r}")
    return int(raw)


def add_dashboard(app: web.Application, config: DashboardConfig) -> Dashboard:
    """Mount the dashboard's pages on `app`; its database is opened on startup and closed on cleanup."""
    dash = Dashboard(config)
    app.add_routes(dash.routes())
    app.on_startup.append(dash.start)
    app.on_cleanup.append(dash.stop)
    return dash


def dashboard_app(config: DashboardConfig) -> web.Application:
    """A stand-alone application serving only the dashboard (`ami dashboard`)."""
    app = web.Application()
    add_dashboard(app, config)
    return app


async def start_dashboard(config: DashboardConfig, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the stand-alone dashboard on `host:port` (0: a free port); returns the runner and the port.

    Loopback by default (the CLI's); like the worker's own server, any address may be configured, since
    every page is read-only.
    """
    runner = web.AppRunner(dashboard_app(config), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise DashboardError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return runner, int(runner.addresses[0][1])


async def serve_dashboard(
    config: DashboardConfig, host: str, port: int, stop: asyncio.Event, on_ready: Callable[[int], None]
) -> None:
    """`ami dashboard`: serve until `stop` is set; `on_ready(port)` is told the port once it listens."""
    runner, bound = await start_dashboard(config, host, port)
    try:
        on_ready(bound)
        await stop.wait()
    finally:
        await runner.cleanup()
