"""An honest worker over a multi-epoch run: every score and settlement matches, nothing is challenged."""

from __future__ import annotations

from scripted_worker import ScriptedWorker, run_scenario
from validator_world import World

from offchain.audit.model import Status


async def test_honest_worker_yields_no_findings_and_no_challenges(world: World) -> None:
    worker = await ScriptedWorker.open(world)
    await run_scenario(world, worker)
    v = await world.open_validator()
    await v.sync()
    audits = await v.process()
    by_status: dict[str, list[str]] = {}
    for a in audits:
        by_status.setdefault(a.status.value, []).append(a.subject)
    assert [a for a in audits if a.findings] == []
    # Four originals scored (the duplicate was rejected, never published); epochs 0..2 are past their grace.
    assert sorted(by_status[Status.MATCH.value]) == [
        "epoch:0",
        "epoch:1",
        "epoch:2",
        "score:1:7",
        "score:2:7",
        "score:3:7",
        "score:4:7",
    ]
    assert world.challenges_on_chain() == []
    assert await v.auditor.db.challenges() == []
    # The settlements were real: payouts of several kinds were paid and matched.
    paid = [p for e in (0, 1, 2) for p in await v.auditor.db.paid(e)]
    assert {p.kind for p in paid} >= {0, 1, 4}
