"""Screenshots of every dashboard page, at 1280 px and 390 px, from a running dashboard (for docs/dashboard/).

    .venv/bin/ami demo --serve                       # prints `dashboard: http://127.0.0.1:PORT/`
    .venv/bin/python scripts/dashboard_screenshots.py http://127.0.0.1:PORT docs/dashboard

Uses Debian's chromium and chromedriver (scripts/setup.sh installs them); nothing is downloaded.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

PAGES = {
    "overview": "/",
    "tracks": "/tracks?sort=novelty&order=desc",
    "track": "/tracks/2",
    "duplicate": "/tracks/5",
    "epochs": "/epochs",
    "epoch": "/epochs/0",
    "accounts": "/accounts",
    "account": None,  # the best paid account, found on /accounts
    "map": "/map",
    "distributions": "/distributions",
    "findings": "/findings",
}


def browser(width: int) -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ):
        opts.add_argument(arg)
    opts.add_argument(f"--window-size={max(width, 500)},900")
    drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    size(drv, width, 900)
    return drv


def size(drv: webdriver.Chrome, width: int, height: int) -> None:
    """Lay pages out at `width` x `height` CSS px (headless windows stop at 500 px: phones are emulated)."""
    drv.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500},
    )


def shoot(base: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for width, suffix in ((1280, ""), (390, "-phone")):
        drv = browser(width)
        try:
            drv.get(base + "/accounts")
            first = drv.find_element("css selector", "#accounts tbody tr[data-account]")
            PAGES["account"] = "/accounts/" + str(first.get_attribute("data-account"))
            for name, path in PAGES.items():
                if suffix and name not in ("overview", "track", "map", "epoch"):
                    continue
                drv.get(base + str(path))
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and drv.execute_script(
                    "return [...document.querySelectorAll('.figure')].some(f => !f.dataset.drawn)"
                ):
                    time.sleep(0.1)
                height = drv.execute_script("return document.documentElement.scrollHeight")
                size(drv, width, min(int(height), 2400))
                time.sleep(0.5)  # let plotly's responsive resize settle
                drv.save_screenshot(str(out / f"{name}{suffix}.png"))
                size(drv, width, 900)
        finally:
            drv.quit()


if __name__ == "__main__":
    shoot(sys.argv[1].rstrip("/"), Path(sys.argv[2]))
