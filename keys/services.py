"""Every write to the key store, and the one read the gateway uses.

The dashboard, the admin, the REST API and the CLI all call these functions, so each change
is validated the same way, writes exactly one :class:`~keys.models.KeyEvent`, and announces
itself through :data:`keys.signals.key_changed` (after commit) so caches drop the key.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from keys import costly, crypto, policy
from keys.constants import MAX_NAME_LENGTH, MAX_PATTERNS, UPDATABLE_FIELDS, BudgetPeriod, KeyAction
from keys.models import APIKey, KeyEvent
from keys.signals import key_changed

PATTERN_RE = re.compile(r"^[A-Za-z0-9._:/@+*-]{1,128}$")
DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LIMIT_FIELDS = ("rpm_limit", "tpm_limit", "max_parallel", "budget_tokens")


class KeyServiceError(Exception):
    """A request the key store refuses: bad input or a lifecycle rule. The message is for people."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class KeyAlreadyRevoked(KeyServiceError):
    """:func:`key_revoke` on a key that is revoked already (nothing was written)."""


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

    def allows_model(self, model: str) -> bool:
        return model_allowed(self.model_patterns, model)

    def ip_allowed(self, client_ip: str | None) -> bool:
        """True when the key may be used from ``client_ip``: no allowed networks, or one holds it.

        The one rule for every surface (the gateway and the management API). With allowed
        networks set, an unknown or unparsable address is refused.
        """
        if not self.allowed_ips:
            return True
        if not client_ip:
            return False
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        return any(address in _network(network) for network in self.allowed_ips)


@lru_cache(maxsize=4096)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


# --- validation ---------------------------------------------------------------------------


def model_allowed(patterns: tuple[str, ...] | list[str], model: str) -> bool:
    """True when ``model`` matches one of ``patterns`` (``*`` is the only wildcard)."""
    return any(p == model or ("*" in p and fnmatch.fnmatchcase(model, p)) for p in patterns)


def clean_model_patterns(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """Normalise patterns given as a list or a comma-separated string; raise on a bad one."""
    items = value.split(",") if isinstance(value, str) else list(value)
    patterns: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise KeyServiceError(_("model patterns must be strings"), field="model_patterns")
        pattern = item.strip()
        if not pattern:
            continue
        if not PATTERN_RE.match(pattern):
            raise KeyServiceError(
                _("invalid model pattern %(pattern)r: use letters, digits, . _ - : / @ + and * as a wildcard")
                % {"pattern": pattern},
                field="model_patterns",
            )
        if pattern not in patterns:
            patterns.append(pattern)
    if not patterns:
        raise KeyServiceError(
            _("at least one model pattern is required (e.g. 'gpt-4o' or '*')"), field="model_patterns"
        )
    if len(patterns) > MAX_PATTERNS:
        raise KeyServiceError(_("at most %(n)d model patterns") % {"n": MAX_PATTERNS}, field="model_patterns")
    return patterns


def clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise KeyServiceError(_("a name is required"), field="name")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise KeyServiceError(_("the name is longer than %(n)d characters") % {"n": MAX_NAME_LENGTH}, field="name")
    if any(ord(c) < 32 for c in name):
        raise KeyServiceError(_("the name contains control characters"), field="name")
    return name


def clean_expires_at(expires_at: datetime | None, *, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    if timezone.is_naive(expires_at):
        raise KeyServiceError(_("the expiry must carry a time zone"), field="expires_at")
    if expires_at <= now:
        raise KeyServiceError(_("the expiry is in the past"), field="expires_at")
    return expires_at


def clean_allowed_ips(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    networks = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise KeyServiceError(
                _("invalid IP network %(network)r (use CIDR, e.g. 10.0.0.0/8)") % {"network": text}, field="allowed_ips"
            )
    return networks


def parse_duration(text: str) -> timedelta:
    """Parse '90d', '24h', '30m', '45s', '2w' or 'now' into a timedelta."""
    if text.strip().lower() in {"now", "0"}:
        return timedelta(0)
    match = DURATION_RE.match(text)
    if not match:
        raise KeyServiceError(_("invalid duration %(text)r: use e.g. 30m, 24h, 90d, 2w or now") % {"text": text})
    return timedelta(**{_DURATION_UNITS[match[2]]: int(match[1])})


def _clean_limits(fields: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for name in LIMIT_FIELDS:
        if name in fields:
            value = fields[name]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise KeyServiceError(
                    _("%(field)s must be a positive whole number or empty") % {"field": name}, field=name
                )
            cleaned[name] = value
    if "budget_usd" in fields:
        value = fields["budget_usd"]
        if value is not None:
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                raise KeyServiceError(_("budget_usd must be a number"), field="budget_usd")
            if not value.is_finite() or value <= 0:
                raise KeyServiceError(_("budget_usd must be a positive number"), field="budget_usd")
        cleaned["budget_usd"] = value
    if "budget_period" in fields:
        value = fields["budget_period"] or ""
        if value and value not in BudgetPeriod.values:
            raise KeyServiceError(
                _("budget_period must be one of %(choices)s") % {"choices": ", ".join(BudgetPeriod.values)},
                field="budget_period",
            )
        cleaned["budget_period"] = value
    if "allowed_ips" in fields:
        cleaned["allowed_ips"] = clean_allowed_ips(fields["allowed_ips"])
    return cleaned


# --- hashing ------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_cost_kib: int, parallelism: int) -> PasswordHasher:
    return crypto.make_hasher(time_cost=time_cost, memory_cost_kib=memory_cost_kib, parallelism=parallelism)


def get_hasher() -> PasswordHasher:
    """The configured argon2id hasher (``settings.KEYGATE_ARGON2``)."""
    params = settings.KEYGATE_ARGON2
    return _hasher(params["time_cost"], params["memory_cost_kib"], params["parallelism"])


def _new_key_fields() -> tuple[dict[str, str], str]:
    public_id, raw = crypto.generate_key(settings.KEYGATE_KEY_PREFIX)
    fields = {
        "public_id": public_id,
        "prefix": settings.KEYGATE_KEY_PREFIX,
        "key_hash": crypto.hash_key(get_hasher(), raw),
        "last4": raw[-4:],
    }
    return fields, raw


# --- writes -------------------------------------------------------------------------------


def _record(
    key: APIKey, action: str, *, actor: AbstractBaseUser | None, via: str, ip: str | None, **details: Any
) -> None:
    KeyEvent.objects.create(
        key=key,
        action=action,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=via[:64],
        ip=ip or None,
        details=details,
    )
    transaction.on_commit(lambda: key_changed.send(sender=APIKey, key_id=key.pk, public_id=key.public_id))


def key_create(
    *,
    name: str,
    model_patterns: str | list[str],
    owner: AbstractBaseUser | None = None,
    expires_at: datetime | None = None,
    description: str = "",
    metadata: dict[str, Any] | None = None,
    is_management: bool = False,
    actor: AbstractBaseUser | None = None,
    minted_by: AbstractBaseUser | None = None,
    via: str = "",
    ip: str | None = None,
    **limits: Any,
) -> tuple[APIKey, str]:
    """Create a key. Returns ``(key, plaintext)``; the plaintext exists only in this return value.

    An ownerless key records who minted it: ``minted_by`` when given (an ownerless management
    key minting another passes its own minter), else ``actor`` when that is a signed-in user;
    neither (the CLI) leaves it empty. Whether the caller may create it is keys.policy's question,
    asked by the surface.
    """
    unknown = set(limits) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"unknown key fields: {', '.join(sorted(unknown))}")
    now = timezone.now()
    if metadata is not None and not isinstance(metadata, dict):
        raise KeyServiceError(_("metadata must be an object"), field="metadata")
    values = {
        "name": clean_name(name),
        "model_patterns": clean_model_patterns(model_patterns) if not is_management else [],
        "owner": owner,
        "expires_at": clean_expires_at(expires_at, now=now),
        "description": description or "",
        "metadata": metadata or {},
        "is_management": is_management,
        "minted_by": _minter(owner, minted_by, actor),
        **_clean_limits(limits),
    }
    for _attempt in range(3):
        fields, raw = _new_key_fields()
        try:
            with transaction.atomic():
                key = APIKey.objects.create(created_at=now, **values, **fields)
                _record(key, KeyAction.CREATED, actor=actor, via=via, ip=ip, name=key.name)
            return key, raw
        except IntegrityError:  # a public id collision (~2^-71): draw again
            continue
    raise RuntimeError("could not allocate a unique public id")


def _minter(
    owner: AbstractBaseUser | None, minted_by: AbstractBaseUser | None, actor: AbstractBaseUser | None
) -> AbstractBaseUser | None:
    if owner is not None:
        return None
    for candidate in (minted_by, actor):
        if candidate is not None and candidate.is_authenticated and candidate.pk is not None:
            return candidate
    return None


def key_rotate(
    *,
    key: APIKey,
    grace: timedelta,
    actor: AbstractBaseUser | None = None,
    via: str = "",
    ip: str | None = None,
) -> tuple[APIKey, str]:
    """Replace ``key`` with a new one that inherits its name, owner, scopes and limits.

    The old key keeps working for ``grace`` (0 = stops now), as Stripe's "roll key". A key with
    an expiry is renewed for the same lifetime. Returns ``(new_key, plaintext)``.
    """
    if grace < timedelta(0):
        raise KeyServiceError(_("the grace period cannot be negative"), field="grace")
    now = timezone.now()
    with transaction.atomic():
        old = APIKey.objects.select_for_update().get(pk=key.pk)
        if old.is_revoked:
            raise KeyServiceError(_("key %(id)s is revoked and cannot be rotated") % {"id": old.public_id})
        if APIKey.objects.filter(rotated_from=old).exists():
            raise KeyServiceError(
                _("key %(id)s was already rotated; rotate its successor instead") % {"id": old.public_id}
            )
        lifetime = old.expires_at - old.created_at if old.expires_at else None
        grace_end = now + grace
        if old.expires_at is None or old.expires_at > grace_end:
            old.expires_at = grace_end
            old.save(update_fields=["expires_at"])
        fields, raw = _new_key_fields()
        new = APIKey.objects.create(
            name=old.name,
            description=old.description,
            owner=old.owner,
            minted_by_id=old.minted_by_id,
            model_patterns=old.model_patterns,
            metadata=old.metadata,
            is_management=old.is_management,
            created_at=now,
            expires_at=now + lifetime if lifetime else None,
            rotated_from=old,
            **{name: getattr(old, name) for name in (*LIMIT_FIELDS, "budget_usd", "budget_period", "allowed_ips")},
            **fields,
        )
        _record(
            old,
            KeyAction.ROTATED,
            actor=actor,
            via=via,
            ip=ip,
            successor=new.public_id,
            grace_seconds=int(grace.total_seconds()),
            expires_at=old.expires_at.isoformat(),
        )
        _record(new, KeyAction.CREATED, actor=actor, via=via, ip=ip, rotated_from=old.public_id, name=new.name)
    key.refresh_from_db()
    return new, raw


def key_revoke(
    *,
    key: APIKey,
    actor: AbstractBaseUser | None = None,
    via: str = "",
    ip: str | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> APIKey:
    """Revoke ``key`` for good. Revoking a revoked key raises :class:`KeyAlreadyRevoked` (nothing
    is written). ``reason`` (e.g. ``"leaked"``) and ``details`` (e.g. where it leaked) go into the
    ``revoked`` event."""
    with transaction.atomic():
        locked = APIKey.objects.select_for_update().get(pk=key.pk)
        if locked.is_revoked:
            raise KeyAlreadyRevoked(_("key %(id)s is already revoked") % {"id": locked.public_id})
        locked.revoked_at = timezone.now()
        locked.revoked_by = actor if actor is not None and actor.is_authenticated else None
        locked.save(update_fields=["revoked_at", "revoked_by"])
        extra = {**(details or {}), **({"reason": reason} if reason else {})}
        _record(locked, KeyAction.REVOKED, actor=actor, via=via, ip=ip, **extra)
    key.refresh_from_db()
    return key


def key_pause(
    *,
    key: APIKey,
    actor: AbstractBaseUser | None = None,
    via: str = "",
    ip: str | None = None,
) -> APIKey:
    """Pause ``key``: the gateway refuses it (like a revoked key) until :func:`key_resume`.

    Reversible, unlike a revocation. Pausing a paused or revoked key is an error (nothing is
    written); the key's expiry keeps running while it is paused.
    """
    with transaction.atomic():
        locked = APIKey.objects.select_for_update().get(pk=key.pk)
        if locked.is_revoked:
            raise KeyServiceError(_("key %(id)s is revoked and cannot be paused") % {"id": locked.public_id})
        if locked.is_paused:
            raise KeyServiceError(_("key %(id)s is already paused") % {"id": locked.public_id})
        locked.paused_at = timezone.now()
        locked.save(update_fields=["paused_at"])
        _record(locked, KeyAction.PAUSED, actor=actor, via=via, ip=ip)
    key.refresh_from_db()
    return key


def key_resume(
    *,
    key: APIKey,
    actor: AbstractBaseUser | None = None,
    via: str = "",
    ip: str | None = None,
) -> APIKey:
    """Resume a paused ``key``: it works again at once (unless it expired meanwhile).

    Resuming a key that is not paused, or a revoked one, is an error (nothing is written).
    """
    with transaction.atomic():
        locked = APIKey.objects.select_for_update().get(pk=key.pk)
        if locked.is_revoked:
            raise KeyServiceError(_("key %(id)s is revoked and cannot be resumed") % {"id": locked.public_id})
        if not locked.is_paused:
            raise KeyServiceError(_("key %(id)s is not paused") % {"id": locked.public_id})
        paused_for = int((timezone.now() - locked.paused_at).total_seconds())
        locked.paused_at = None
        locked.save(update_fields=["paused_at"])
        _record(locked, KeyAction.RESUMED, actor=actor, via=via, ip=ip, paused_seconds=paused_for)
    key.refresh_from_db()
    return key


def key_update(
    *,
    key: APIKey,
    actor: AbstractBaseUser | None = None,
    via: str = "",
    ip: str | None = None,
    **changes: Any,
) -> APIKey:
    """Change a key's editable fields (name, description, models, expiry, metadata, limits).

    Only fields whose value actually changes are written and listed in the event.
    """
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise KeyServiceError(_("these fields cannot be changed: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    now = timezone.now()
    cleaned: dict[str, Any] = {}
    if "name" in changes:
        cleaned["name"] = clean_name(changes["name"])
    if "description" in changes:
        cleaned["description"] = changes["description"] or ""
    if "model_patterns" in changes:
        cleaned["model_patterns"] = clean_model_patterns(changes["model_patterns"])
    if "metadata" in changes:
        if not isinstance(changes["metadata"], dict):
            raise KeyServiceError(_("metadata must be an object"), field="metadata")
        cleaned["metadata"] = changes["metadata"]
    if "expires_at" in changes:
        cleaned["expires_at"] = clean_expires_at(changes["expires_at"], now=now)
    cleaned.update(_clean_limits(changes))
    with transaction.atomic():
        locked = APIKey.objects.select_for_update().get(pk=key.pk)
        if locked.is_revoked:
            raise KeyServiceError(_("key %(id)s is revoked and cannot be changed") % {"id": locked.public_id})
        if locked.is_management and "model_patterns" in cleaned:
            raise KeyServiceError(_("management keys cannot call models"), field="model_patterns")
        changed = {name: value for name, value in cleaned.items() if getattr(locked, name) != value}
        if not changed:
            return locked
        for name, value in changed.items():
            setattr(locked, name, value)
        locked.save(update_fields=list(changed))
        _record(locked, KeyAction.UPDATED, actor=actor, via=via, ip=ip, fields=sorted(changed))
    key.refresh_from_db()
    return key


def key_replace(
    *,
    key: APIKey,
    actor: AbstractBaseUser | None = None,
    via: str = "",
    ip: str | None = None,
) -> tuple[APIKey, str]:
    """A successor for a *revoked* key (say, one revoked because it leaked), with the same name,
    owner, description, models, metadata and limits; a key with an expiry gets the same lifetime.

    Rotation is for live keys (the old one keeps a grace period); a revoked key has none, so this
    is its "rotate to a new key". A key is replaced at most once (its successor is linked as by
    rotation). Returns ``(new_key, plaintext)``; the old key records ``replaced``.
    """
    now = timezone.now()
    with transaction.atomic():
        old = APIKey.objects.select_for_update().get(pk=key.pk)
        if not old.is_revoked:
            raise KeyServiceError(f"key {old.public_id} is not revoked: rotate it instead")
        if APIKey.objects.filter(rotated_from=old).exists():
            raise KeyServiceError(f"key {old.public_id} was already replaced")
        lifetime = old.expires_at - old.created_at if old.expires_at else None
        fields, raw = _new_key_fields()
        new = APIKey.objects.create(
            name=old.name,
            description=old.description,
            owner=old.owner,
            model_patterns=old.model_patterns,
            metadata=old.metadata,
            is_management=old.is_management,
            created_at=now,
            expires_at=now + lifetime if lifetime else None,
            rotated_from=old,
            **{name: getattr(old, name) for name in (*LIMIT_FIELDS, "budget_usd", "budget_period", "allowed_ips")},
            **fields,
        )
        _record(old, KeyAction.REPLACED, actor=actor, via=via, ip=ip, successor=new.public_id)
        _record(new, KeyAction.CREATED, actor=actor, via=via, ip=ip, rotated_from=old.public_id, name=new.name)
    return new, raw


# --- reads --------------------------------------------------------------------------------


def find_key(identifier: str) -> APIKey:
    """The key named by its public id, masked form (``sk-kg-AbCd…wxyz``) or numeric id."""
    text = identifier.strip()
    candidate = text
    prefix = f"{settings.KEYGATE_KEY_PREFIX}-"
    if candidate.startswith(prefix):
        candidate = candidate[len(prefix) :]
    candidate = re.split(r"…|\.\.\.", candidate)[0]
    candidate = candidate[: crypto.PUBLIC_ID_LENGTH] if len(candidate) >= crypto.PUBLIC_ID_LENGTH else candidate
    key = None
    if crypto.PUBLIC_ID_RE.match(candidate):
        key = APIKey.objects.filter(public_id=candidate).select_related("owner").first()
    elif text.isdigit():
        key = APIKey.objects.filter(pk=int(text)).select_related("owner").first()
    if key is None:
        raise KeyServiceError(_("no key matches %(id)r") % {"id": identifier})
    return key


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
        rpm_limit=key.rpm_limit,
        tpm_limit=key.tpm_limit,
        max_parallel=key.max_parallel,
        budget_tokens=key.budget_tokens,
        budget_usd=key.budget_usd,
        budget_period=key.budget_period,
        allowed_ips=tuple(key.allowed_ips),
        minted_by_id=key.minted_by_id,
        minter_may_act=_minter_may_act(key),
        paused_at=key.paused_at,
    )


def _minter_may_act(key: APIKey) -> bool:
    """The minter rule (keys.policy): only ownerless management keys answer to their minter."""
    if not key.is_management or key.owner_id is not None or key.minted_by_id is None:
        return True
    return policy.minter_may_act(key.minted_by)


def get_key_state(key_id: int) -> KeyState | None:
    """The current state of an already-verified key (one query, no argon2)."""
    key = APIKey.objects.filter(pk=key_id).select_related("owner", "minted_by").first()
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
    key = APIKey.objects.filter(public_id=parsed.public_id).select_related("owner", "minted_by").first()
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


def get_user(username: str) -> AbstractBaseUser:
    """A user by username, or a clear error."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise KeyServiceError(_("no user named %(name)r") % {"name": username}, field="owner")
    return user
