"""The read-only web dashboard: tracks and why they scored, epochs and payouts, accounts, the map, findings.

Served by the worker's own aiohttp server (offchain/http.py) or on its own by `ami dashboard --db PATH` over a
worker's database or a validator's folder. It only reads: every query runs on a read-only SQLite connection.
"""

from offchain.dashboard.pages import DashboardConfig, DashboardError, add_dashboard, dashboard_app

__all__ = ["DashboardConfig", "DashboardError", "add_dashboard", "dashboard_app"]
