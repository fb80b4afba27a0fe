"""The one path a leaked key takes: recognise it, prove it is ours, revoke it, record where.

Every leak source feeds :func:`revoke_leaked` — GitHub's secret-scanning partner batches and
organisation alerts (``keys/views/security.py``), the public report endpoint, and
``manage.py keys scan --revoke`` (``keys/scan.py``) — so each leaked key is revoked the same way:
through :func:`keys.services.key_revoke` (one ``revoked`` event with ``reason: leaked``, the
``url`` and ``source`` of the leak, and the actor label of the source), then, after commit, the
:data:`keys.signals.key_leaked` announcement. The owner is told where the key leaked by
notify/ (a ``key.leaked`` email and webhook, written with the ``revoked`` event).

Cost, in order, so garbage is free and forgeries are cheap:

1. format, prefix and checksum (:func:`keys.crypto.parse_key`): no I/O. Another product's
   token, another installation's prefix, a typo: refused here.
2. one query for all the public ids that passed.
3. one argon2id verify per candidate whose public id exists, in a few threads (argon2-cffi
   releases the GIL). The checksum is not a secret — anyone who has seen a public id (it is in
   masks and logs) can build a checksum-valid string — so a key is revoked only when the whole
   key matches its stored hash: a leak report can never revoke someone else's key.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db import transaction

from keys import crypto, services
from keys.models import APIKey
from keys.signals import key_leaked

REASON = "leaked"
MAX_URL_LENGTH = 2000
MAX_SOURCE_LENGTH = 64
# argon2-cffi releases the GIL: a few threads use the cores for a batch of many live keys.
VERIFY_THREADS = max(1, min(4, os.cpu_count() or 1))
_LOOKUP_CHUNK = 500  # public ids per query (well under every backend's parameter limit)


class Verdict(StrEnum):
    """What a reported string turned out to be."""

    REVOKED = "revoked"  # a live key of this installation: revoked now
    ALREADY_REVOKED = "already_revoked"  # one of ours, revoked before: nothing to do
    NOT_OURS = "not_ours"  # garbage, another product's or installation's, or a forgery
    UNDECIDED = "undecided"  # not verified within the time budget: nothing done, ask again

    @property
    def is_ours(self) -> bool:
        return self in (Verdict.REVOKED, Verdict.ALREADY_REVOKED)


@dataclass(frozen=True, slots=True)
class Finding:
    """A string found somewhere public, and where: ``url`` and ``source`` are recorded as given
    (truncated), never followed."""

    raw: str
    url: str = ""
    source: str = ""


def classify(raw: object) -> crypto.ParsedKey | None:
    """``raw`` parsed as a key of this installation, or None. No I/O."""
    return crypto.parse_key(raw, settings.KEYGATE_KEY_PREFIX) if isinstance(raw, str) else None


def revoke_leaked(
    findings: Sequence[Finding], *, via: str, ip: str | None = None, budget: float | None = None
) -> list[Verdict]:
    """Revoke every live key of this installation among ``findings``; one verdict per finding.

    ``via`` is the audit trail's actor label ("secret scanning", "leak report", "keys scan").
    A key already revoked is a no-op, not an error; a key reported twice in one call is revoked
    once, with the first finding's url and source. Garbage costs no query; a string that
    passes the checksum costs a share of one query, and one argon2 verify if its public id exists.

    ``budget`` (seconds) bounds the argon2 work for callers that must answer in time: keys not
    verified by then are :attr:`Verdict.UNDECIDED` (nothing done to them; call again, e.g. in the
    background). Live keys are verified before revoked ones, so the budget goes where it matters.
    """
    parsed = [classify(finding.raw) for finding in findings]
    public_ids = sorted({p.public_id for p in parsed if p is not None})
    stored: dict[str, APIKey] = {}
    for start in range(0, len(public_ids), _LOOKUP_CHUNK):
        chunk = public_ids[start : start + _LOOKUP_CHUNK]
        stored.update((key.public_id, key) for key in APIKey.objects.filter(public_id__in=chunk))
    candidates = sorted(
        {p.raw for p in parsed if p is not None and p.public_id in stored},
        key=lambda raw: stored[_public_id(raw)].is_revoked,  # live keys first
    )
    genuine, undecided = _verified(candidates, stored, budget)

    verdicts: list[Verdict] = []
    done: dict[str, Verdict] = {}
    # One commit for the whole batch (each revocation is a savepoint inside it): a commit costs
    # more than the revocation itself, and the argon2 work is already done, so the write lock is
    # held only for the quick part.
    with transaction.atomic() if genuine else contextlib.nullcontext():
        for finding, key_parts in zip(findings, parsed, strict=True):
            if key_parts is not None and key_parts.raw in undecided:
                verdicts.append(Verdict.UNDECIDED)
                continue
            if key_parts is None or key_parts.raw not in genuine:
                verdicts.append(Verdict.NOT_OURS)
                continue
            if key_parts.raw not in done:
                done[key_parts.raw] = _revoke(stored[key_parts.public_id], finding, via=via, ip=ip)
            verdicts.append(done[key_parts.raw])
    return verdicts


def _public_id(raw: str) -> str:
    return raw[-crypto.BODY_LENGTH : -crypto.BODY_LENGTH + crypto.PUBLIC_ID_LENGTH]


def _verified(candidates: list[str], stored: dict[str, APIKey], budget: float | None) -> tuple[set[str], set[str]]:
    """``(genuine, undecided)``: the candidates whose whole key matches the stored argon2id hash,
    and those not checked within ``budget`` seconds (None: no limit)."""
    hasher = services.get_hasher()

    def check(raw: str) -> bool:
        return crypto.verify_key_hash(hasher, stored[_public_id(raw)].key_hash, raw)

    if not candidates:
        return set(), set()
    if len(candidates) == 1 and budget is None:
        return {raw for raw in candidates if check(raw)}, set()
    pool = ThreadPoolExecutor(max_workers=VERIFY_THREADS, thread_name_prefix="leak-verify")
    futures = {pool.submit(check, raw): raw for raw in candidates}
    done, _ = wait(futures, timeout=budget)
    # Unstarted checks are cancelled; the few running finish in their threads, unused.
    pool.shutdown(wait=False, cancel_futures=True)
    genuine = {futures[future] for future in done if future.result()}
    return genuine, {raw for future, raw in futures.items() if future not in done}


def _revoke(key: APIKey, finding: Finding, *, via: str, ip: str | None) -> Verdict:
    if key.is_revoked:
        return Verdict.ALREADY_REVOKED
    details = {"url": finding.url[:MAX_URL_LENGTH], "source": finding.source[:MAX_SOURCE_LENGTH]}
    try:
        services.key_revoke(key=key, via=via, ip=ip, reason=REASON, details=details)
    except services.KeyAlreadyRevoked:  # revoked by someone else since the lookup
        return Verdict.ALREADY_REVOKED
    transaction.on_commit(
        lambda: key_leaked.send(sender=APIKey, key_id=key.pk, public_id=key.public_id, owner_id=key.owner_id, **details)
    )
    return Verdict.REVOKED
