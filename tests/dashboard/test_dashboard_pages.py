"""Every dashboard page in a real headless Chromium at 1280 px and 390 px: the numbers shown equal the
database's (read here with plain sqlite3), nothing overflows a phone's width, and the console stays clean."""

from __future__ import annotations

import json
import urllib.parse
from collections import defaultdict

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.ui import WebDriverWait

from tests.dashboard.conftest import CREATORS, FARM, Browser, E, Served, number

PAGES = [
    "/",
    "/tracks",
    "/tracks?sort=novelty&order=desc",
    "/tracks/2",
    "/tracks/5",
    "/tracks/8",
    "/epochs",
    "/epochs/0",
    "/epochs/1",
    "/accounts",
    f"/accounts/{CREATORS[1]}",
    "/map",
    "/distributions",
    "/findings",
]


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_fits_the_width_and_logs_no_console_error(
    served: Served, browser: Browser, path: str
) -> None:
    d = browser.open(served.url + path)
    assert browser.console_errors() == []
    assert d.execute_script("return window.innerWidth") == browser.width
    assert d.find_element("css selector", "h1").text
    # Nothing wider than the window: wide tables scroll inside their own box, the page never sideways.
    overflow = d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{path} is {overflow} px wider than {browser.width} px"
    # Every figure was drawn by the locally served plotly.js (an SVG or canvas inside it).
    for fig in d.find_elements("css selector", ".figure"):
        assert fig.get_attribute("data-drawn") == "1"
        assert fig.find_elements("css selector", ".main-svg")


def test_overview_shows_the_stored_checkpoint_and_queues(served: Served, wide: Browser) -> None:
    wide.open(served.url + "/")
    (cp,) = served.rows("SELECT block_number FROM checkpoint")[0]
    status = dict(served.rows("SELECT status, COUNT(*) FROM tracks GROUP BY status"))
    pay = dict(served.rows("SELECT status, COUNT(*) FROM payouts GROUP BY status"))
    assert number(wide.text("[data-k=checkpoint]")) == cp
    assert number(wide.text("[data-k=tracks]")) == sum(status.values())
    assert number(wide.text("[data-k=listens]")) == served.rows("SELECT COUNT(*) FROM listens")[0][0]
    assert number(wide.text("[data-k=q-published]")) == status["published"]
    assert number(wide.text("[data-k=q-rejected]")) == status["rejected"]
    assert number(wide.text("[data-k=q-scored]")) == status.get("scored", 0) + status.get("submitted", 0)
    assert number(wide.text("[data-k=q-payouts-paid]")) == pay["paid"]
    assert number(wide.text("[data-k=q-payouts-pending]")) == pay["pending"]
    for ep, rec in served.rows("SELECT epoch, record FROM epochs"):
        assert number(wide.text(f"[data-k=paid-{ep}]")) == sum(json.loads(rec)["paid"].values())


def test_tracks_sort_page_and_search_against_the_database(served: Served, wide: Browser) -> None:
    wide.open(served.url + "/tracks?sort=novelty&order=desc")
    shown = [
        (int(r.get_attribute("data-token")), r)
        for r in wide.driver.find_elements("css selector", "#tracks tbody tr")
    ]
    expected = served.rows(
        "SELECT token_id, novelty_bp, quality_bp FROM tracks ORDER BY novelty_bp DESC, token_id DESC"
    )
    assert [t for t, _ in shown] == [t for t, _, _ in expected]
    for (_tok, row), (_t, nov, qual) in zip(shown, expected, strict=True):
        assert row.find_element("css selector", "[data-k=novelty]").text == ("–" if nov is None else str(nov))
        assert row.find_element("css selector", "[data-k=quality]").text == (
            "–" if qual is None else str(qual)
        )
    assert number(wide.text("[data-k=total]")) == len(expected)
    # Search by genre (inside the stored score details) and by status.
    wide.open(served.url + "/tracks?q=synthwave")
    assert wide.texts("#tracks tbody tr td:first-child") == ["#6", "#7"]
    wide.open(served.url + "/tracks?q=rejected")
    assert wide.texts("#tracks tbody tr td:first-child") == ["#5", "#8"]
    # Clicking a header sorts; clicking a row's link opens the track.
    wide.open(served.url + "/tracks")
    wide.driver.find_element("link text", "#3").click()
    assert wide.driver.current_url.endswith("/tracks/3")


def test_track_shows_every_stored_component_and_links_the_duplicate(served: Served, wide: Browser) -> None:
    wide.open(served.url + "/tracks/2")
    (details,) = served.rows("SELECT scored_json FROM tracks WHERE token_id=2")[0]
    stored = json.loads(details)
    cells = {
        c.get_attribute("data-name"): float(c.text)
        for c in wide.driver.find_elements("css selector", "#components [data-k=component]")
    }
    # Names the dashboard was never told about show up, nested ones by their path.
    assert cells["harmonic_surprise"] == stored["harmonic_surprise"]
    assert cells["quality_parts.loudness_fit"] == stored["quality_parts"]["loudness_fit"]
    assert cells["genre_z"] == stored["genre_z"] and cells["originality"] == stored["originality"]
    nov, qual = served.rows("SELECT novelty_bp, quality_bp FROM tracks WHERE token_id=2")[0]
    assert number(wide.text("[data-k=novelty]")) == nov and number(wide.text("[data-k=quality]")) == qual
    assert wide.text("[data-k=genre]") == stored["scored_genre"]
    # Nearest in the catalogue: the same style group as token 2 (tokens 1-5), best first.
    near = [int(t.lstrip("#")) for t in wide.texts("#nearest tbody td:first-child")]
    assert near and set(near[:4]) <= {1, 3, 4, 5}
    # The duplicate's verdict links to the earlier track, and the earlier one lists its copy.
    wide.open(served.url + "/tracks/5")
    assert "duplicate of token:1" in wide.text("[data-k=verdict]")
    wide.driver.find_element("link text", "track #1").click()
    assert wide.driver.current_url.endswith("/tracks/1")
    assert "#5" in wide.text(".verdict.duplicate")


def test_epoch_budget_payouts_and_sybil_caps(served: Served, wide: Browser) -> None:
    wide.open(served.url + "/epochs/0")
    (rec,) = served.rows("SELECT record FROM epochs WHERE epoch=0")[0]
    record = json.loads(rec)
    for kind, paid in record["paid"].items():
        row = wide.driver.find_element("css selector", f"#budget tr[data-kind={kind}]")
        assert number(row.find_element("css selector", "[data-k=paid]").text) == paid
        assert (
            number(row.find_element("css selector", "[data-k=unallocated]").text)
            == record["unallocated"][kind]
        )
    amounts = sorted(number(t) for t in wide.texts("#payouts [data-k=amount]"))
    assert amounts == sorted(int(a) for (a,) in served.rows("SELECT amount FROM payouts WHERE epoch=0"))
    # Every farm wallet is listed under the sybil caps, with what it was paid.
    farm = served.rows(
        "SELECT account, amount FROM payouts WHERE epoch=0 AND kind=1 AND reason LIKE '%farm%'"
    )
    assert {a for a, _ in farm} == set(FARM)
    sybil_rows = wide.driver.find_elements("css selector", "#sybil tbody tr")
    assert len(sybil_rows) == number(wide.text("[data-k=sybil-count]"))
    assert number(wide.text("[data-k=sybil-total]")) >= sum(int(a) for _, a in farm)


def test_account_earnings_and_royalties_per_split(served: Served, wide: Browser) -> None:
    acct = CREATORS[1]
    wide.open(served.url + "/accounts/" + urllib.parse.quote(acct))
    per_epoch: dict[int, int] = defaultdict(int)
    for ep, amount in served.rows("SELECT epoch, amount FROM payouts WHERE account=?", (acct,)):
        per_epoch[ep] += int(amount)
    assert number(wide.text("[data-k=total]")) == sum(per_epoch.values())
    for ep, total in per_epoch.items():
        row = wide.driver.find_element("css selector", f"#by-epoch tr[data-epoch='{ep}']")
        assert number(row.find_element("css selector", "[data-k=epoch-total]").text) == total
    royalties: dict[int, int] = defaultdict(int)
    for tok, amount in served.rows(
        "SELECT token_id, amount FROM payouts WHERE account=? AND kind=4", (acct,)
    ):
        royalties[tok] += int(amount)
    shown = {
        int(r.get_attribute("data-token")): number(r.find_element("css selector", "[data-k=royalty]").text)
        for r in wide.driver.find_elements("css selector", "#royalties tbody tr[data-token]")
    }
    assert shown == royalties
    # Token 1 is split 70/30: this co-author's share is shown as 30 %.
    assert "30.0 %" in wide.text("#royalties tr[data-token='1']")
    wide.open(served.url + "/accounts")
    ranking = served.rows(
        "SELECT account, SUM(CAST(amount AS INTEGER)) t FROM payouts GROUP BY account"
        " ORDER BY t DESC, account"
    )
    assert [
        r.get_attribute("data-account")
        for r in wide.driver.find_elements("css selector", "#accounts tbody tr")
    ] == [a for a, _ in ranking]


def test_map_points_clusters_emerging_and_hover(served: Served, wide: Browser) -> None:
    d = wide.open(served.url + "/map")
    traces = d.execute_script(
        "return document.getElementById('map').data.map(t => ({name: t.name, ids: Array.from(t.customdata),"
        " text: Array.from(t.text)}))"
    )
    points = sorted(i for t in traces for i in t["ids"])
    assert points == [1, 2, 3, 4, 5, 6, 7]  # every catalogue entry (token 8 was undecodable: not in it)
    assert number(wide.text("[data-k=points]")) == 7
    # The two tracks minted in the latest epoch form their own cluster, highlighted as emerging.
    emerging = [t for t in traces if t["name"].startswith("★ emerging")]
    assert len(emerging) == 1 and sorted(emerging[0]["ids"]) == [6, 7]
    assert "synthwave" in emerging[0]["name"]
    # Hovering the mouse over a point shows that track: move the real pointer onto token 6's pixel.
    dx, dy = d.execute_script(
        "const m = document.getElementById('map'), L = m._fullLayout;"
        "const t = m.data.find(t => t.customdata.includes(6)), i = t.customdata.indexOf(6);"
        "const r = m.getBoundingClientRect();"
        "return [L.xaxis.l2p(m._fullData[m.data.indexOf(t)].x[i]) + L.xaxis._offset - r.width / 2,"
        "        L.yaxis.l2p(m._fullData[m.data.indexOf(t)].y[i]) + L.yaxis._offset - r.height / 2];"
    )
    ActionChains(d).move_to_element_with_offset(d.find_element("id", "map"), int(dx), int(dy)).perform()
    WebDriverWait(d, 10).until(lambda drv: "#6" in drv.find_element("css selector", ".hoverlayer").text)
    label = d.find_element("css selector", ".hoverlayer").text
    assert "#6" in label and "synthwave" in label


def test_distributions_count_every_scored_track_per_mint_epoch(served: Served, wide: Browser) -> None:
    wide.open(served.url + "/distributions")
    expected = dict(
        served.rows(
            "SELECT block_number / ?, COUNT(*) FROM tracks WHERE novelty_bp IS NOT NULL GROUP BY 1", (E,)
        )
    )
    shown = {
        int(r.get_attribute("data-epoch")): number(r.find_element("css selector", "[data-k=count]").text)
        for r in wide.driver.find_elements("css selector", "#per-epoch tbody tr")
    }
    assert shown == expected
    bars = wide.driver.execute_script(
        "return document.getElementById('novelty-chart').data"
        ".map(t => Array.from(t.y).reduce((a, b) => a + b, 0))"
    )
    assert sorted(bars) == sorted(expected.values())


def test_findings_with_evidence_and_challenges_on_chain(served: Served, wide: Browser, data_dir) -> None:
    import sqlite3

    from offchain.audit.model import evidence_commitment

    wide.open(served.url + "/findings")
    with sqlite3.connect(data_dir / "validator" / "validator.sqlite") as conn:
        counts = dict(conn.execute("SELECT status, COUNT(*) FROM audits GROUP BY status").fetchall())
        (doc,) = conn.execute("SELECT doc FROM audits WHERE subject='score:2:1'").fetchone()
    for status, n in counts.items():
        assert number(wide.text(f"[data-k=count-{status}]")) == n
    shown = [
        s.get_attribute("data-subject") for s in wide.driver.find_elements("css selector", "section.finding")
    ]
    assert shown == ["score:2:1", "epoch:1"]  # mismatches first; plain matches are not findings
    card = wide.driver.find_element("css selector", "section.finding.mismatch")
    assert "novelty differs" in card.text and "7500" in card.text and "7600" in card.text
    assert "sent" in card.text and "bafyevidence" in card.text
    card.find_element("link text", "evidence").click()
    evidence = json.loads(wide.driver.find_element("tag name", "pre").text)
    stored = json.loads(doc)
    assert evidence["evidence_commitment"] == stored["evidence_commitment"]
    assert "0x" + evidence_commitment(stored["evidence"]).hex() == stored["evidence_commitment"]
    # The worker's own view: the Challenged event it recorded.
    wide.open(served.url + "/findings")
    assert "0x" + "ee" * 32 in wide.text("#on-chain")
