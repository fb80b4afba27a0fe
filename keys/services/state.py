"""What the gateway reads about a key: :class:`KeyState` (with its team's :class:`TeamState`),
through :func:`verify_key` (first use: one lookup, one argon2 verify) and :func:`get_key_state`
(refresh of an already verified key). The rules about a key live on these types: whether it is
usable now (``inactive_reason``), which models (``allows_model``) and client addresses
(``ip_allowed``) it may use — the key's own and its team's, which must both allow."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from argon2 import PasswordHasher
from django.conf import settings

from keys import costly, crypto, policy
from keys.limits import Limits, patterns_allow
from keys.models import APIKey, Team


@dataclass(frozen=True, slots=True)
class TeamState:
    """The team of a key, as the gateway needs it: its model patterns and limits."""

    id: int
    name: str
    model_patterns: tuple[str, ...]
    limits: Limits

    @classmethod
    def of(cls, team: Team) -> TeamState:
        return cls(id=team.pk, name=team.name, model_patterns=tuple(team.model_patterns), limits=team.limits)


@dataclass(frozen=True, slots=True)
class KeyState:
    """What the gateway needs to know about a verified key; holds no secret."""

    id: int
    public_id: str
    name: str
    owner_id: int | None
    owner_is_active: bool
    model_patterns: tuple[str, ...]
    is_management: bool
    expires_at: datetime | None
    revoked_at: datetime | None
    rpm_limit: int | None
    tpm_limit: int | None
    max_parallel: int | None
    budget_tokens: int | None
    budget_usd: Decimal | None
    budget_period: str
    allowed_ips: tuple[str, ...]
    # An ownerless management key's minter (None: made by the CLI) and whether the minter may
    # still act (active, and still holds keys.policy.MINTER_PERMISSION) when the state was read.
    minted_by_id: int | None = None
    minter_may_act: bool = True
    paused_at: datetime | None = None
    team: TeamState | None = None
    # The key's own limits as one value, built once (the gateway reads it on every request).
    own_limits: Limits | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "own_limits", Limits.of(self))

    @property
    def limits(self) -> Limits:
        """The key's own limits (its team's are ``team.limits``)."""
        return self.own_limits  # type: ignore[return-value]

    @property
    def team_id(self) -> int | None:
        return self.team.id if self.team is not None else None

    def inactive_reason(self, now: datetime) -> str | None:
        """None when the key may be used now, else a short reason ('revoked', 'expired', …)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.paused_at is not None:
            return "paused"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if not self.owner_is_active:
            return "owner_disabled"
        if not self.minter_may_act:
            return "minter_inactive"
        return None

    def model_refused_by(self, model: str) -> str | None:
        """Which scope refuses ``model``: ``"key"``, ``"team"``, or None when both allow it."""
        if not patterns_allow(self.model_patterns, model):
            return "key"
        if self.team is not None and not patterns_allow(self.team.model_patterns, model):
            return "team"
        return None

    def allows_model(self, model: str) -> bool:
        return self.model_refused_by(model) is None

    def ip_refused_by(self, client_ip: str | None) -> str | None:
        """Which scope refuses ``client_ip``: ``"key"``, ``"team"``, or None when both allow it."""
        if not self.limits.ip_allowed(client_ip):
            return "key"
        if self.team is not None and not self.team.limits.ip_allowed(client_ip):
            return "team"
        return None

    def ip_allowed(self, client_ip: str | None) -> bool:
        """True when the key may be used from ``client_ip``: the key's allowed networks and its
        team's (each: none set, or one holds it). The one rule for every surface (the gateway and
        the management API). With networks set, an unknown or unparsable address is refused."""
        return self.ip_refused_by(client_ip) is None


# --- hashing ------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_cost_kib: int, parallelism: int) -> PasswordHasher:
    return crypto.make_hasher(time_cost=time_cost, memory_cost_kib=memory_cost_kib, parallelism=parallelism)


def get_hasher() -> PasswordHasher:
    """The configured argon2id hasher (``settings.KEYGATE_ARGON2``)."""
    params = settings.KEYGATE_ARGON2
    return _hasher(params["time_cost"], params["memory_cost_kib"], params["parallelism"])


# --- reads --------------------------------------------------------------------------------


def _state(key: APIKey) -> KeyState:
    return KeyState(
        id=key.pk,
        public_id=key.public_id,
        name=key.name,
        owner_id=key.owner_id,
        owner_is_active=key.owner is None or key.owner.is_active,
        model_patterns=tuple(key.model_patterns),
        is_management=key.is_management,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        **{name: value for name, value in key.limits.as_dict().items()},
        minted_by_id=key.minted_by_id,
        minter_may_act=_minter_may_act(key),
        paused_at=key.paused_at,
        team=TeamState.of(key.team) if key.team_id is not None else None,
    )


def _minter_may_act(key: APIKey) -> bool:
    """The minter rule (keys.policy): only ownerless management keys answer to their minter."""
    if not key.is_management or key.owner_id is not None or key.minted_by_id is None:
        return True
    return policy.minter_may_act(key.minted_by, key.team_id)


def get_key_state(key_id: int) -> KeyState | None:
    """The current state of an already-verified key (one query, no argon2)."""
    key = APIKey.objects.filter(pk=key_id).select_related("owner", "minted_by", "team").first()
    return _state(key) if key else None


def verify_key(raw: str) -> KeyState | None:
    """Authenticate a presented key. ``None`` unless it is a well-formed key whose hash matches.

    Order: format and checksum (no I/O), one indexed lookup by public id, one argon2id verify.
    The verify costs what ``settings.KEYGATE_ARGON2`` says (OWASP minimum by default: ~25-40 ms
    and 19 MiB on a 2-core machine) and runs in a slot of the process's argon2 limiter
    (:mod:`keys.costly`): this blocks while the line is short and raises
    :class:`~keys.costly.Argon2Busy` when it is full. Callers on a hot path must cache the
    result, count the attempt before calling, and run this in a worker thread. The returned
    state may be revoked or expired: check ``inactive_reason``.
    """
    parsed = crypto.parse_key(raw, settings.KEYGATE_KEY_PREFIX)
    if parsed is None:
        return None
    key = APIKey.objects.filter(public_id=parsed.public_id).select_related("owner", "minted_by", "team").first()
    if key is None:
        return None
    hasher = get_hasher()
    with costly.argon2_limiter().slot(hasher.memory_cost):
        if not crypto.verify_key_hash(hasher, key.key_hash, raw):
            return None
        rehash = crypto.hash_key(hasher, raw) if hasher.check_needs_rehash(key.key_hash) else None
    if rehash is not None:
        APIKey.objects.filter(pk=key.pk).update(key_hash=rehash)
    return _state(key)
