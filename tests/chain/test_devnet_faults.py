"""Devnet fault switches and finality: dropped sockets, skipped notices, held/lagging finality, reorgs,
injected pool rejections; watched-extrinsic statuses over a raw websocket (what clients really receive)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from substrateinterface import Keypair, SubstrateInterface
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from ami_node.devnet.testing import DevnetHandle

ALICE = Keypair.create_from_uri("//Alice")
BOB = Keypair.create_from_uri("//Bob")


@pytest.fixture(autouse=True)
def clean_faults(dn: DevnetHandle) -> Iterator[None]:
    yield
    dn.set_faults(  # every switch a test here turns, back off
        drop_every_n_messages=0, skip_finalized_notices=0, hold_finality=False,
        finality_lag=0, finality_delay_ms=0, reject_next=0,
    )


class Client:
    """A bare JSON-RPC websocket client that keeps notifications apart from replies."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.notes: list[dict[str, Any]] = []

    def call(self, method: str, *params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(
            json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": list(params)})
        )
        while True:
            msg = json.loads(self.ws.recv(timeout=10))
            if msg.get("id") == self.next_id:
                return dict(msg)
            self.notes.append(msg)

    def note(self, timeout: float = 10) -> dict[str, Any]:
        if self.notes:
            return self.notes.pop(0)
        return dict(json.loads(self.ws.recv(timeout=timeout)))

    def results(self, sub: str, n: int) -> list[Any]:
        """The next n notifications of subscription `sub` (others stay queued)."""
        out = []
        for msg in list(self.notes):
            if len(out) < n and msg["params"]["subscription"] == sub:
                self.notes.remove(msg)
                out.append(msg["params"]["result"])
        while len(out) < n:
            msg = dict(json.loads(self.ws.recv(timeout=10)))
            if msg.get("params", {}).get("subscription") == sub:
                out.append(msg["params"]["result"])
            else:
                self.notes.append(msg)
        return out


def signed_transfer(si: SubstrateInterface, value: int = 10**12, nonce: int | None = None) -> str:
    call = si.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.ss58_address, "value": value})
    if nonce is None:
        nonce = int(si.rpc_request("system_accountNextIndex", [ALICE.ss58_address])["result"])
    ext = si.create_signed_extrinsic(call=call, keypair=ALICE, nonce=nonce)
    return "0x" + bytes(ext.data.data).hex()


def test_drop_connections_now_and_every_n_messages(dn: DevnetHandle) -> None:
    with connect(dn.url) as ws:
        c = Client(ws)
        sub = c.call("chain_subscribeNewHeads")["result"]
        c.results(sub, 1)
        assert dn.drop_connections() >= 1
        with pytest.raises(ConnectionClosed):
            c.note(timeout=5)
    dn.set_faults(drop_every_n_messages=3)
    with connect(dn.url) as ws:
        c = Client(ws)
        for _ in range(3):
            c.call("system_health")
        with pytest.raises(ConnectionClosed):
            c.call("system_health")
    dn.set_faults(drop_every_n_messages=0)
    with connect(dn.url) as ws:
        assert Client(ws).call("system_chain")["result"] == "Development"


def test_substrate_interface_survives_a_dropped_socket(dn: DevnetHandle, si: SubstrateInterface) -> None:
    dn.drop_connections()
    # substrate-interface reconnects when a send fails; the first call may raise, the retry must work
    try:
        si.get_block_header()
    except Exception:
        si.connect_websocket()
    assert si.get_block_header()["header"]["number"] >= 0


def test_skip_finalized_notices(dn: DevnetHandle) -> None:
    with connect(dn.url) as ws:
        c = Client(ws)
        sub = c.call("chain_subscribeFinalizedHeads")["result"]
        (first,) = c.results(sub, 1)
        dn.set_faults(skip_finalized_notices=1)
        dn.new_block(2)
        (notice,) = c.results(sub, 1)
        assert int(notice["number"], 16) == int(first["number"], 16) + 2  # the first new one was skipped
        assert (
            c.call("chain_getFinalizedHead")["result"]
            == c.call("chain_getBlockHash", int(notice["number"], 16))["result"]
        )


def test_held_finality_then_release(dn: DevnetHandle, si: SubstrateInterface) -> None:
    dn.set_faults(hold_finality=True)
    with connect(dn.url) as ws:
        c = Client(ws)
        sub = c.call("author_submitAndWatchExtrinsic", signed_transfer(si))["result"]
        ready, in_block = c.results(sub, 2)
        assert ready == "ready" and "inBlock" in in_block
        fin = c.call("chain_getFinalizedHead")["result"]
        assert fin != in_block["inBlock"]
        dn.set_faults(hold_finality=False)
        (final,) = c.results(sub, 1)
        assert final == {"finalized": in_block["inBlock"]}


def test_finality_lag_in_instant_mode(dn: DevnetHandle, si: SubstrateInterface) -> None:
    dn.set_faults(finality_lag=2)
    with connect(dn.url) as ws:
        c = Client(ws)
        sub = c.call("author_submitAndWatchExtrinsic", signed_transfer(si))["result"]
        _, in_block, final = c.results(sub, 3)
        assert final == {"finalized": in_block["inBlock"]}
        best = int(c.call("chain_getHeader")["result"]["number"], 16)
        fin = c.call("chain_getHeader", c.call("chain_getFinalizedHead")["result"])["result"]
        assert best - int(fin["number"], 16) == 2


def test_reorg_retracts_and_reincludes(dn: DevnetHandle, si: SubstrateInterface) -> None:
    dn.set_faults(hold_finality=True)
    with connect(dn.url) as ws:
        c = Client(ws)
        heads = c.call("chain_subscribeNewHeads")["result"]
        sub = c.call("author_submitAndWatchExtrinsic", signed_transfer(si))["result"]
        _, in_block = c.results(sub, 2)
        old_hash = in_block["inBlock"]
        number = int(c.call("chain_getHeader", old_hash)["result"]["number"], 16)
        new_hashes = dn.reorg(1)
        retracted, again = c.results(sub, 2)
        assert retracted == {"retracted": old_hash}
        assert again == {"inBlock": new_hashes[0]} and new_hashes[0] != old_hash
        assert c.call("chain_getBlockHash", number)["result"] == new_hashes[0]
        assert c.call("chain_getHeader", old_hash)["result"] is not None  # the fork block is still known
        _, first_head, fork_head = c.results(heads, 3)
        assert int(first_head["number"], 16) == int(fork_head["number"], 16) == number
        dn.set_faults(hold_finality=False)
        assert c.results(sub, 1) == [{"finalized": new_hashes[0]}]
    with pytest.raises(ValueError, match="unfinalized"):
        dn.reorg(1)


@pytest.mark.parametrize(("code", "data"), [(1014, None), (1010, "Transaction is outdated"), (1012, None)])
def test_injected_rejections(dn: DevnetHandle, si: SubstrateInterface, code: int, data: str | None) -> None:
    dn.set_faults(reject_next=1, reject_code=code)
    ext = signed_transfer(si)
    with connect(dn.url) as ws:
        c = Client(ws)
        err = c.call("author_submitExtrinsic", ext)["error"]
        assert err["code"] == code
        if data:
            assert err["data"] == data
        assert "result" in c.call("author_submitExtrinsic", ext)  # the next one goes through


def test_bad_fault_switch_is_a_clear_error(dn: DevnetHandle) -> None:
    with connect(dn.url) as ws:
        err = Client(ws).call("devnet_setFaults", {"no_such_switch": 1})["error"]
        assert err["code"] == -32602 and "no_such_switch" in err["message"]


def test_new_block_and_time_travel(dn: DevnetHandle, si: SubstrateInterface) -> None:
    before = si.query("Timestamp", "Now").value
    with connect(dn.url) as ws:
        c = Client(ws)
        c.call("devnet_advanceTime", 3_600_000)
        head = c.call("dev_newBlock", {"count": 2})["result"]
        assert c.call("chain_getHead")["result"] == head
    assert si.query("Timestamp", "Now", block_hash=head).value >= before + 3_600_000


def test_storage_subscription_reports_changes(dn: DevnetHandle, si: SubstrateInterface) -> None:
    key = si.create_storage_key("System", "Account", [BOB.ss58_address]).to_hex()
    with connect(dn.url) as ws:
        c = Client(ws)
        sub = c.call("state_subscribeStorage", [key])["result"]
        (first,) = c.results(sub, 1)
        assert first["changes"][0][0] == key and first["changes"][0][1] is not None
        si.submit_extrinsic(
            si.create_signed_extrinsic(
                call=si.compose_call(
                    "Balances", "transfer_keep_alive", {"dest": BOB.ss58_address, "value": 10**12}
                ),
                keypair=ALICE,
            ),
            wait_for_inclusion=True,
        )
        (change,) = c.results(sub, 1)
        assert change["changes"][0][1] != first["changes"][0][1]
        assert c.call("state_unsubscribeStorage", sub)["result"] is True


def test_pool_limit(dn: DevnetHandle, si: SubstrateInterface, monkeypatch: pytest.MonkeyPatch) -> None:
    from ami_node.devnet import pool

    monkeypatch.setattr(pool, "POOL_LIMIT", 1)
    nonce = int(si.rpc_request("system_accountNextIndex", [ALICE.ss58_address])["result"])
    with connect(dn.url) as ws:
        c = Client(ws)
        assert "result" in c.call("author_submitExtrinsic", signed_transfer(si, nonce=nonce + 10))
        err = c.call("author_submitExtrinsic", signed_transfer(si, nonce=nonce + 11))["error"]
        assert err["code"] == 1016
    dn.call(lambda: dn.chain.pool.clear() or dn.chain.pool_by_hash.clear())


def test_fault_switches_are_validated(dn: DevnetHandle) -> None:
    with pytest.raises(ValueError, match="reject_code"):
        dn.set_faults(reject_next=1, reject_code=1234)
    with pytest.raises(ValueError, match="hold_finality"):
        dn.set_faults(hold_finality="yes")
    assert dn.call(lambda: dn.chain.faults.reject_next) == 0  # nothing changed


def test_old_blocks_keep_their_events_but_not_their_state(
    dn: DevnetHandle, si: SubstrateInterface, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ami_node.devnet import chain

    monkeypatch.setattr(chain, "STORAGE_HISTORY", 4)
    receipt = si.submit_extrinsic(
        si.create_signed_extrinsic(
            call=si.compose_call(
                "Balances", "transfer_keep_alive", {"dest": BOB.ss58_address, "value": 10**12}
            ),
            keypair=ALICE,
        ),
        wait_for_inclusion=True,
    )
    dn.new_block(chain.STORAGE_HISTORY + 2)
    old = receipt.block_hash
    events = si.get_events(block_hash=old)
    assert [e.value["event_id"] for e in events][-1] == "ExtrinsicSuccess"
    with connect(dn.url) as ws:
        key = si.create_storage_key("System", "Account", [BOB.ss58_address]).to_hex()
        err = Client(ws).call("state_getStorage", key, old)["error"]
        assert err["code"] == 4003 and "discarded" in err["data"]


def test_finality_delay(dn: DevnetHandle, si: SubstrateInterface) -> None:
    import time

    dn.set_faults(finality_delay_ms=400)
    with connect(dn.url) as ws:
        c = Client(ws)
        sub = c.call("author_submitAndWatchExtrinsic", signed_transfer(si))["result"]
        _, in_block = c.results(sub, 2)
        seen = time.monotonic()
        (final,) = c.results(sub, 1)
        assert final == {"finalized": in_block["inBlock"]}
        assert time.monotonic() - seen >= 0.3
