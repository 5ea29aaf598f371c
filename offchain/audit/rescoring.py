"""The validator's rescoring walk: each minted track, in token order, rescored under every model version run.

A track whose content is temporarily unavailable stops the walk for that version (the catalogue of later
tracks would be incomplete); what the chain itself decides about content (an invalid CID, content over the
size limit) is a verdict; this validator's own failures never are (see `offchain.audit.auditor`).
"""

from __future__ import annotations

import asyncio

import structlog

from offchain.audit.db import MintRow, ValidatorDb
from offchain.audit.options import AuditOptions
from offchain.audit.rescore import Rescored, RescoreError, Rescorer
from offchain.ipfs import errors as e
from offchain.ipfs.metadata import MAX_METADATA_BYTES
from offchain.ipfs.store import ContentStore
from offchain.scoring_rule import DeclaredGenre, declared_genre, no_metadata

log = structlog.get_logger("ami.audit")

# The reason of a provisional rejection: content unavailable and no score published (see rescore_pending).
PROVISIONAL = "not_found"
# The reason of a provisional rejection made because this validator failed (fetch error, rescorer exception,
# engine unable to score) on a track with no published score: redone like PROVISIONAL if a score lands.
UNVERIFIED = "unverified"


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, e.IpfsUnavailable | e.IpfsTimeout | e.IpfsNotFound)


def _content_reason(exc: BaseException) -> str:
    if isinstance(exc, e.InvalidCid):
        return "bad_cid"
    if isinstance(exc, e.CidMismatch):
        return "cid_mismatch"
    if isinstance(exc, e.IpfsTooLarge):
        return "too_large"
    return "fetch_failed"


def _content_verdict(exc: BaseException) -> bool:
    """Whether a fetch error is the rule's verdict on the content itself, the same for every validator: the
    CID on chain is invalid, or the content is over the size limit. Anything else (a CID mismatch is this
    validator's IPFS node serving wrong bytes, an unexpected exception is a bug) says nothing of the track."""
    return isinstance(exc, e.InvalidCid | e.IpfsTooLarge)


class RescoreWalk:
    """The auditor's rescoring (its database, content store, rescorers and options are the auditor's)."""

    db: ValidatorDb
    content: ContentStore
    rescorers: dict[int, Rescorer]
    opt: AuditOptions
    _restored: set[int]
    # Why each token could not be rescored yet, by model version (content unavailable, ...).
    blocked: dict[int, tuple[int, str]]

    async def rescore_pending(self) -> int:
        """Rescore minted tracks in token order under every model version this validator runs.

        A track whose content is temporarily unavailable stops the walk for that version (later tracks'
        catalogue would be incomplete), unless no score was published for it and it was minted more than the
        grace period ago: then it is treated as the worker treats it, rejected and outside the catalogue. That
        rejection is provisional: if a score for it lands later, the walk is rewound to it and redone.
        Returns how many tracks were rescored.
        """
        done = 0
        mints = await self.db.mints()
        scored = await self.db.scored_tokens()
        head = await self.db.head()
        self.blocked.clear()
        for version, rescorer in sorted(self.rescorers.items()):
            revisit = await self.db.provisional_rejections(version) & scored
            if revisit:
                first = min(revisit)
                dropped = await self.db.delete_rescored_from(version, first)
                # Score audits made against the old catalogue are made again (a challenge already decided
                # stays decided: it is never sent twice).
                stale = []
                for subject in await self.db.audit_statuses():
                    kind, _, rest = subject.partition(":")
                    tok, _, ver = rest.partition(":")
                    if kind == "score" and int(ver) == version and int(tok) >= first:
                        stale.append(subject)
                await self.db.delete_audits(stale)
                log.info("audit.rewind", model_version=version, from_token=first, dropped=dropped)
                self._restored.discard(version)
            if version not in self._restored:
                entries = await self.db.catalogue_entries(version)
                try:
                    await asyncio.to_thread(rescorer.restore, entries)
                except Exception as exc:  # e.g. entries stored by an older validator: unverifiable, said why
                    why = f"the rescorer cannot restore its catalogue: {type(exc).__name__}: {exc}"
                    self.blocked[version] = (entries[0][0] if entries else 0, why)
                    log.error("audit.restore_failed", model_version=version, error=str(exc))
                    continue
                self._restored.add(version)
            have = await self.db.rescored_tokens(version)
            for mint in mints:
                if mint.token_id in have:
                    continue
                settled = mint.token_id in scored or head - mint.minted_at[0] < self.opt.grace
                result = await self._rescore_one(
                    rescorer, mint, wait_for_content=settled, published=mint.token_id in scored
                )
                if result is None:
                    break
                await self.db.save_rescored(version, mint.token_id, result)
                if result.entry is not None:
                    await asyncio.to_thread(rescorer.accept, mint.token_id, result.entry)
                done += 1
        return done

    async def _rescore_one(
        self, rescorer: Rescorer, mint: MintRow, *, wait_for_content: bool, published: bool = False
    ) -> Rescored | None:
        """The track's recomputation, or None: not now (content unavailable, or this validator failed on a
        track with a published score; `blocked` says why)."""
        try:
            audio = await self.content.cat(mint.audio_cid, max_bytes=self.opt.max_audio_bytes)
        except Exception as exc:
            if _transient(exc):
                if wait_for_content:
                    self.blocked[rescorer.model_version] = (mint.token_id, f"content unavailable: {exc}")
                    log.info("audit.content_unavailable", token_id=mint.token_id, error=str(exc))
                    return None
                return Rescored(
                    accepted=False, reason=f"{PROVISIONAL}: {exc}", inputs={"audio_cid": mint.audio_cid}
                )
            reason = _content_reason(exc)
            if not _content_verdict(exc):
                why = f"{reason} here: {type(exc).__name__}: {exc}"
                return self._unverified(rescorer, mint, published, why)
            return Rescored(accepted=False, reason=f"{reason}: {exc}", inputs={"audio_cid": mint.audio_cid})
        declared = await self._declared_genre(mint)
        if declared is None:
            self.blocked[rescorer.model_version] = (mint.token_id, "metadata unavailable: IPFS unreachable")
            return None
        try:
            r = await asyncio.to_thread(rescorer.rescore, mint.token_id, audio, declared)
        except RescoreError as exc:
            self.blocked[rescorer.model_version] = (mint.token_id, f"rescorer failed: {exc}")
            log.error("audit.rescorer_failed", token_id=mint.token_id, error=str(exc))
            return None
        except Exception as exc:  # a bug or a broken installation of the validator: never a verdict
            log.exception("audit.rescorer_crashed", token_id=mint.token_id)
            why = f"rescorer raised {type(exc).__name__}: {exc}"
            return self._unverified(rescorer, mint, published, why)
        if not r.accepted and (r.reason or "").startswith("unscorable"):
            # The engine could not run on this machine (fpcalc missing, ...): not the track's fault.
            return self._unverified(rescorer, mint, published, str(r.reason))
        return r

    def _unverified(self, rescorer: Rescorer, mint: MintRow, published: bool, why: str) -> Rescored | None:
        """This validator failed on `mint`: stop the walk when a score was published for it (unverifiable,
        with the reason), else reject it provisionally as the worker did (redone if a score lands)."""
        if published:
            self.blocked[rescorer.model_version] = (mint.token_id, f"unverifiable here: {why}")
            log.warning("audit.unverifiable", token_id=mint.token_id, reason=why)
            return None
        return Rescored(
            accepted=False, reason=f"{UNVERIFIED}: {why}"[:500], inputs={"audio_cid": mint.audio_cid}
        )

    async def _declared_genre(self, mint: MintRow) -> DeclaredGenre | None:
        """The creator's declared genre, read as the worker reads it (verified, capped at the metadata limit).

        As on the worker, only an unreachable IPFS node is waited out (None: try again later); any other
        failure, or malformed metadata, means no genre, with the reason the shared rule records.
        """
        try:
            raw = await self.content.cat(mint.metadata_cid, max_bytes=MAX_METADATA_BYTES)
        except e.IpfsUnavailable as exc:
            log.info("audit.metadata_unavailable", token_id=mint.token_id, error=str(exc))
            return None
        except Exception as exc:
            reason = "not_found" if isinstance(exc, e.IpfsNotFound | e.IpfsTimeout) else _content_reason(exc)
            return no_metadata(reason, str(exc))
        return declared_genre(raw)
