"""Every write to a key: create, rotate, revoke, pause, resume, update, replace.

The dashboard, the admin, the REST API and the CLI all call these functions, so each change
is validated the same way, writes exactly one :class:`~keys.models.KeyEvent`, and announces
itself through :data:`keys.signals.key_changed` (after commit) so caches drop the key.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from keys import crypto
from keys.constants import UPDATABLE_FIELDS, KeyAction
from keys.models import APIKey, KeyEvent, Team
from keys.services.state import get_hasher
from keys.services.validation import (
    KeyAlreadyRevoked,
    KeyServiceError,
    check_within_team,
    clean_expires_at,
    clean_limits,
    clean_model_patterns,
    clean_name,
)
from keys.signals import key_changed


def _new_key_fields() -> tuple[dict[str, str], str]:
    public_id, raw = crypto.generate_key(settings.KEYGATE_KEY_PREFIX)
    fields = {
        "public_id": public_id,
        "prefix": settings.KEYGATE_KEY_PREFIX,
        "key_hash": crypto.hash_key(get_hasher(), raw),
        "last4": raw[-4:],
    }
    return fields, raw


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
    team: Team | None = None,
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

    A key in ``team`` may only narrow the team's models: a pattern outside them raises
    :class:`OutsideTeam`. A management key in ``team`` is scoped to it: it manages that team's
    keys and nothing else (keys.policy.TeamKeyUser).
    """
    unknown = set(limits) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"unknown key fields: {', '.join(sorted(unknown))}")
    now = timezone.now()
    if metadata is not None and not isinstance(metadata, dict):
        raise KeyServiceError(_("metadata must be an object"), field="metadata")
    patterns = clean_model_patterns(model_patterns) if not is_management else []
    if team is not None:
        check_within_team(patterns, team.model_patterns, team.name)
    values = {
        "name": clean_name(name),
        "model_patterns": patterns,
        "owner": owner,
        "team": team,
        "expires_at": clean_expires_at(expires_at, now=now),
        "description": description or "",
        "metadata": metadata or {},
        "is_management": is_management,
        "minted_by": _minter(owner, minted_by, actor),
        **clean_limits(limits),
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
        new, raw = _successor(old, now)  # before the old key's expiry moves: the lifetime is kept
        grace_end = now + grace
        if old.expires_at is None or old.expires_at > grace_end:
            old.expires_at = grace_end
            old.save(update_fields=["expires_at"])
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
    cleaned.update(clean_limits(changes))
    with transaction.atomic():
        locked = APIKey.objects.select_for_update(of=("self",)).select_related("team").get(pk=key.pk)
        if locked.is_revoked:
            raise KeyServiceError(_("key %(id)s is revoked and cannot be changed") % {"id": locked.public_id})
        if locked.is_management and "model_patterns" in cleaned:
            raise KeyServiceError(_("management keys cannot call models"), field="model_patterns")
        if locked.team_id is not None and "model_patterns" in cleaned:
            check_within_team(cleaned["model_patterns"], locked.team.model_patterns, locked.team.name)
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
        new, raw = _successor(old, now)
        _record(old, KeyAction.REPLACED, actor=actor, via=via, ip=ip, successor=new.public_id)
        _record(new, KeyAction.CREATED, actor=actor, via=via, ip=ip, rotated_from=old.public_id, name=new.name)
    return new, raw


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


def get_user(username: str) -> AbstractBaseUser:
    """A user by username, or a clear error."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise KeyServiceError(_("no user named %(name)r") % {"name": username}, field="owner")
    return user


def _successor(old: APIKey, now: datetime) -> tuple[APIKey, str]:
    """A new key that takes over ``old`` (rotation or replacement): same name, owner, team,
    minter, scopes, limits and metadata, the same lifetime from ``now``. Returns it and its
    plaintext, shown once."""
    lifetime = old.expires_at - old.created_at if old.expires_at else None
    fields, raw = _new_key_fields()
    new = APIKey.objects.create(
        name=old.name,
        description=old.description,
        owner=old.owner,
        team_id=old.team_id,
        minted_by_id=old.minted_by_id,
        model_patterns=old.model_patterns,
        metadata=old.metadata,
        is_management=old.is_management,
        created_at=now,
        expires_at=now + lifetime if lifetime else None,
        rotated_from=old,
        **{**old.limits.as_dict(), "allowed_ips": list(old.allowed_ips)},
        **fields,
    )
    return new, raw
