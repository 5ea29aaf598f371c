"""The contracts' rules in pallets_spec.model: every error path, splits, idempotent and atomic payouts."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pallets_spec.model import (
    U128_MAX,
    BatchDistributed,
    Challenged,
    Listened,
    Minted,
    NftError,
    NftState,
    OracleAdded,
    Paid,
    Payout,
    PlaylistAdded,
    PlaylistCreated,
    RewardsError,
    RewardsState,
    ScoreSubmitted,
    Tagged,
    Transfer,
    Transferred,
    ValidatorAdded,
    state_from_dict,
)

ALICE, BOB, CHARLIE = b"\xa1" * 32, b"\xb0" * 32, b"\xc4" * 32
CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


def nft_with_token() -> tuple[NftState, int]:
    s = NftState.new(ALICE)
    token, _ = s.mint(ALICE, CID, CID, [(ALICE, 7000), (BOB, 3000)])
    return s, token


def rewards_with_oracle() -> RewardsState:
    s = RewardsState.new(ALICE)
    s.add_oracle(ALICE, ALICE)
    return s


def pay(i: int, to: bytes = BOB, amount: int = 10, kind: int = 1) -> Payout:
    return Payout(id=bytes([i]) * 32, to=to, amount=amount, kind=kind)


def raises(exc_type: type, variant: str, fn, *args, **kwargs) -> None:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    assert info.value.variant == variant


# -- ami_nft --
def test_mint_assigns_ids_from_one_and_emits_minted() -> None:
    s = NftState.new(ALICE)
    t1, ev1 = s.mint(BOB, CID, "meta", [(BOB, 10000)])
    t2, _ = s.mint(ALICE, CID, "meta2", [(ALICE, 1), (BOB, 9999)])
    assert (t1, t2) == (1, 2)
    assert ev1 == [Minted(1, BOB, CID, "meta", [(BOB, 10000)])]
    assert s.owner_of(1) == BOB and s.owner_of(3) is None
    assert s.total_supply() == 2
    info = s.token_info(2)
    assert info is not None and info.creator == ALICE and info.royalty_splits == ((ALICE, 1), (BOB, 9999))


@pytest.mark.parametrize(
    "splits",
    [
        [],  # none
        [(ALICE, 5000), (BOB, 4999)],  # sums to 9999
        [(ALICE, 5000), (BOB, 5001)],  # sums to 10001
        [(ALICE, 5000), (ALICE, 5000)],  # duplicate account
        [(ALICE, 10000), (BOB, 0)],  # zero share
        [(bytes([i]) * 32, 625) for i in range(17)],  # 17 recipients (sum 10625)
    ],
)
def test_mint_rejects_invalid_splits(splits: list[tuple[bytes, int]]) -> None:
    s = NftState.new(ALICE)
    raises(NftError, "InvalidSplits", s.mint, ALICE, CID, CID, splits)
    assert s.total_supply() == 0 and s.tokens == {}


def test_mint_accepts_sixteen_recipients() -> None:
    s = NftState.new(ALICE)
    token, _ = s.mint(ALICE, CID, CID, [(bytes([i]) * 32, 625) for i in range(16)])
    assert token == 1


@pytest.mark.parametrize("audio,meta", [("", CID), (CID, ""), ("x" * 129, CID), (CID, "é" * 65)])
def test_mint_rejects_invalid_cids(audio: str, meta: str) -> None:
    s = NftState.new(ALICE)
    raises(NftError, "InvalidCid", s.mint, ALICE, audio, meta, [(ALICE, 10000)])
    # 128 bytes is the limit, measured in UTF-8 bytes
    assert s.mint(ALICE, "x" * 128, CID, [(ALICE, 10000)])[0] == 1


def test_cid_checked_before_splits() -> None:
    s = NftState.new(ALICE)
    raises(NftError, "InvalidCid", s.mint, ALICE, "", CID, [])


def test_nft_transfer_rules() -> None:
    s, token = nft_with_token()
    raises(NftError, "TokenNotFound", s.transfer, ALICE, BOB, 99)
    raises(NftError, "NotOwner", s.transfer, BOB, BOB, token)
    _, ev = s.transfer(ALICE, BOB, token)
    assert ev == [Transferred(token, ALICE, BOB)]
    assert ev[0].abi_fields() == {"token_id": token, "from": ALICE, "to": BOB}
    assert s.owner_of(token) == BOB
    info = s.token_info(token)
    assert info is not None and info.creator == ALICE
    raises(NftError, "NotOwner", s.transfer, ALICE, CHARLIE, token)


def test_listen_and_tag_rules() -> None:
    s, token = nft_with_token()
    raises(NftError, "TokenNotFound", s.listen, BOB, 42, 10)
    raises(NftError, "ZeroSeconds", s.listen, BOB, token, 0)
    assert s.listen(BOB, token, 1) == (None, [Listened(token, BOB, 1)])
    raises(NftError, "TokenNotFound", s.tag, BOB, 42, "lofi")
    raises(NftError, "InvalidTag", s.tag, BOB, token, "")
    raises(NftError, "InvalidTag", s.tag, BOB, token, "t" * 33)
    assert s.tag(BOB, token, "t" * 32) == (None, [Tagged(token, BOB, "t" * 32)])


def test_playlist_rules() -> None:
    s, token = nft_with_token()
    raises(NftError, "InvalidName", s.create_playlist, BOB, "")
    raises(NftError, "InvalidName", s.create_playlist, BOB, "n" * 65)
    pid, ev = s.create_playlist(BOB, "night drive")
    assert pid == 1 and ev == [PlaylistCreated(1, BOB, "night drive")]
    raises(NftError, "PlaylistNotFound", s.add_to_playlist, BOB, 2, token)
    raises(NftError, "NotOwner", s.add_to_playlist, ALICE, pid, token)
    raises(NftError, "TokenNotFound", s.add_to_playlist, BOB, pid, 99)
    assert s.add_to_playlist(BOB, pid, token) == (None, [PlaylistAdded(pid, token, BOB)])
    raises(NftError, "AlreadyInPlaylist", s.add_to_playlist, BOB, pid, token)


def test_nft_oracle_set_is_owner_managed() -> None:
    s = NftState.new(ALICE)
    raises(NftError, "NotContractOwner", s.add_oracle, BOB, BOB)
    assert s.add_oracle(ALICE, CHARLIE) == (None, [OracleAdded(CHARLIE)])
    assert s.is_oracle(CHARLIE)
    raises(NftError, "NotContractOwner", s.remove_oracle, BOB, CHARLIE)
    s.remove_oracle(ALICE, CHARLIE)
    assert not s.is_oracle(CHARLIE)
    assert s.get_owner() == ALICE


# -- ami_rewards --
def test_submit_score_rules() -> None:
    s = rewards_with_oracle()
    raises(RewardsError, "NotOracle", s.submit_score, BOB, 1, 1, 1, 1, b"\0" * 32)
    raises(RewardsError, "InvalidScore", s.submit_score, ALICE, 1, 10001, 0, 1, b"\0" * 32)
    raises(RewardsError, "InvalidScore", s.submit_score, ALICE, 1, 0, 10001, 1, b"\0" * 32)
    _, ev = s.submit_score(ALICE, 1, 10000, 0, 1, b"\7" * 32)
    assert ev == [ScoreSubmitted(1, ALICE, 10000, 0, 1, b"\7" * 32)]
    raises(RewardsError, "AlreadyScored", s.submit_score, ALICE, 1, 5, 5, 1, b"\x08" * 32)
    s.submit_score(ALICE, 1, 5, 6, 2, b"\x09" * 32)
    latest = s.score_of(1)
    assert latest is not None and (latest.model_version, latest.novelty_bp, latest.oracle) == (2, 5, ALICE)
    assert s.score_of(2) is None


def test_distribute_pays_and_emits_in_order() -> None:
    s = rewards_with_oracle()
    _, ev = s.distribute(ALICE, 3, 0, [pay(1, BOB, 10, 0), pay(2, CHARLIE, 5, 4), pay(3, BOB, 1, 2)])
    assert ev == [
        Paid(bytes([1]) * 32, BOB, 10, 0, 3),
        Paid(bytes([2]) * 32, CHARLIE, 5, 4, 3),
        Paid(bytes([3]) * 32, BOB, 1, 2, 3),
        BatchDistributed(3, 0, 3, 16),
    ]
    assert s.balance_of(BOB) == 11 and s.balance_of(CHARLIE) == 5 and s.total_supply() == 16
    assert s.is_paid(bytes([2]) * 32) and not s.is_paid(bytes([9]) * 32)
    assert s.batch_paid(3, 0) and not s.batch_paid(3, 1)


def test_distribute_accepts_abi_dicts() -> None:
    s = rewards_with_oracle()
    s.distribute(ALICE, 1, 1, [{"id": b"\1" * 32, "to": BOB, "amount": 7, "kind": 3}])
    assert s.balance_of(BOB) == 7


@pytest.mark.parametrize(
    "caller,epoch,batch,payouts,variant",
    [
        (BOB, 1, 9, [pay(50)], "NotOracle"),
        (ALICE, 1, 9, [], "EmptyBatch"),
        (ALICE, 1, 0, [pay(50)], "BatchAlreadyPaid"),  # (1, 0) is paid in the fixture
        (ALICE, 1, 9, [pay(50), pay(1)], "PayoutAlreadyPaid"),  # id 1 paid earlier
        (ALICE, 1, 9, [pay(50), pay(50)], "PayoutAlreadyPaid"),  # twice within the batch
        (ALICE, 1, 9, [pay(50), pay(51, kind=5)], "InvalidPayoutKind"),
        (ALICE, 1, 9, [pay(50, amount=U128_MAX), pay(51, amount=1)], "Overflow"),
        (ALICE, 1, 9, [pay(50, amount=U128_MAX - 9)], "Overflow"),  # supply already holds 10
    ],
    ids=[
        "not-oracle",
        "empty",
        "batch-paid",
        "id-paid",
        "id-twice",
        "kind",
        "sum-overflow",
        "supply-overflow",
    ],
)
def test_distribute_refusals_are_atomic(
    caller: bytes, epoch: int, batch: int, payouts: list[Payout], variant: str
) -> None:
    s = rewards_with_oracle()
    s.distribute(ALICE, 1, 0, [pay(1)])
    before = copy.deepcopy(s)
    raises(RewardsError, variant, s.distribute, caller, epoch, batch, payouts)
    # all or nothing: not even the batch's valid first payout was applied
    assert s == before
    assert not s.is_paid(bytes([50]) * 32)


def test_payout_id_refused_in_any_later_batch_and_epoch() -> None:
    s = rewards_with_oracle()
    s.distribute(ALICE, 1, 0, [pay(1)])
    for epoch, batch in [(1, 1), (2, 0), (99, 7)]:
        raises(RewardsError, "PayoutAlreadyPaid", s.distribute, ALICE, epoch, batch, [pay(1)])
    assert s.balance_of(BOB) == 10 and s.total_supply() == 10


def test_supply_can_reach_u128_max_exactly() -> None:
    s = rewards_with_oracle()
    s.distribute(ALICE, 1, 0, [pay(1, amount=U128_MAX - 1), pay(2, amount=1)])
    assert s.total_supply() == U128_MAX


def test_challenge_rules() -> None:
    s = RewardsState.new(ALICE)
    raises(RewardsError, "NotValidator", s.challenge, BOB, 1, b"\1" * 32)
    raises(RewardsError, "NotContractOwner", s.add_validator, BOB, BOB)
    assert s.add_validator(ALICE, BOB) == (None, [ValidatorAdded(BOB)])
    assert s.challenge(BOB, 1, b"\1" * 32) == (1, [Challenged(1, 1, BOB, b"\1" * 32)])
    raises(RewardsError, "AlreadyChallenged", s.challenge, BOB, 1, b"\1" * 32)
    assert s.challenge(BOB, 2, b"\1" * 32)[0] == 2
    assert s.challenge(BOB, 1, b"\2" * 32)[0] == 3
    s.remove_validator(ALICE, BOB)
    raises(RewardsError, "NotValidator", s.challenge, BOB, 3, b"\1" * 32)


def test_mint_transfer_rules() -> None:
    s = rewards_with_oracle()
    s.distribute(ALICE, 1, 0, [pay(1, BOB, 10)])
    raises(RewardsError, "InsufficientBalance", s.transfer, BOB, CHARLIE, 11)
    raises(RewardsError, "InsufficientBalance", s.transfer, CHARLIE, BOB, 1)
    assert s.transfer(BOB, CHARLIE, 4) == (None, [Transfer(BOB, CHARLIE, 4)])
    assert (s.balance_of(BOB), s.balance_of(CHARLIE), s.total_supply()) == (6, 4, 10)
    s.transfer(BOB, BOB, 6)  # to oneself: unchanged
    assert s.balance_of(BOB) == 6


def test_rewards_sets_are_owner_managed() -> None:
    s = RewardsState.new(ALICE)
    for fn in (s.add_oracle, s.remove_oracle, s.add_validator, s.remove_validator):
        raises(RewardsError, "NotContractOwner", fn, BOB, BOB)
    s.add_oracle(ALICE, BOB)
    assert s.is_oracle(BOB) and not s.is_validator(BOB)
    s.remove_oracle(ALICE, BOB)
    assert not s.is_oracle(BOB)


def test_errors_refuse_unknown_variants() -> None:
    with pytest.raises(ValueError):
        NftError("NoSuchThing")
    assert str(RewardsError("NotOracle")) == "ami_rewards reverted: NotOracle"


def test_states_round_trip_through_json() -> None:
    nft, token = nft_with_token()
    nft.create_playlist(BOB, "p")
    nft.add_to_playlist(BOB, 1, token)
    nft.add_oracle(ALICE, CHARLIE)
    rw = rewards_with_oracle()
    rw.add_validator(ALICE, BOB)
    rw.distribute(ALICE, 1, 0, [pay(1, BOB, U128_MAX - 5)])
    rw.submit_score(ALICE, token, 1, 2, 3, b"\4" * 32)
    rw.challenge(BOB, token, b"\5" * 32)
    for state in (nft, rw):
        restored = state_from_dict(json.loads(json.dumps(state.to_dict())))
        assert restored == state and type(restored) is type(state)
    with pytest.raises(ValueError, match="unknown contract model"):
        state_from_dict({"model": "nope@1"})


def test_clone_is_independent_of_the_original() -> None:
    nft, token = nft_with_token()
    twin = nft.clone()
    twin.transfer(ALICE, BOB, token)
    twin.create_playlist(BOB, "p")
    twin.add_oracle(ALICE, BOB)
    assert nft.owner_of(token) == ALICE and nft.playlists == {} and nft.oracles == set()
    rw = rewards_with_oracle()
    copy_ = rw.clone()
    copy_.distribute(ALICE, 1, 0, [pay(1)])
    assert rw.total_supply() == 0 and rw.paid == set() and rw.balances == {} and rw.paid_batches == set()
    assert copy_ != rw and rw.clone() == rw


# -- properties over random operation sequences --
_ids = st.integers(min_value=0, max_value=7).map(lambda i: bytes([i]) * 32)
_accounts = st.sampled_from([ALICE, BOB, CHARLIE])
_payouts = st.lists(
    st.builds(Payout, id=_ids, to=_accounts, amount=st.integers(0, 10**30), kind=st.integers(0, 5)),
    max_size=4,
)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("distribute"), _accounts, st.integers(0, 2), st.integers(0, 2), _payouts),
        st.tuples(st.just("transfer"), _accounts, _accounts, st.integers(0, 10**30)),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(_ops)
def test_rewards_invariants_hold_for_any_sequence(ops: list[tuple]) -> None:
    s = RewardsState.new(ALICE)
    s.add_oracle(ALICE, ALICE)
    s.add_oracle(ALICE, BOB)
    paid_once: set[bytes] = set()
    for op in ops:
        before = s.to_dict()
        try:
            if op[0] == "distribute":
                _, caller, epoch, batch, payouts = op
                s.distribute(caller, epoch, batch, payouts)
                ids = [p.id for p in payouts]
                # an accepted batch pays only ids never paid before, each once
                assert len(set(ids)) == len(ids) and not paid_once & set(ids)
                paid_once.update(ids)
            else:
                _, caller, to, amount = op
                s.transfer(caller, to, amount)
        except RewardsError:
            assert s.to_dict() == before  # a refused message changes nothing
        assert sum(s.balances.values()) == s.total_supply()
        assert s.paid == paid_once
