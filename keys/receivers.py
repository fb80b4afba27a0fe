"""Reactions to changes made outside :mod:`keys.services`: users signing in and being disabled.

Disabling a user (``is_active`` set to False and saved — the admin, a shell, a script) must end
everything they hold: their sessions are deleted and :data:`keys.signals.key_changed` is sent for
each of their keys (and each ownerless key they minted) after commit, so every gateway cache
drops the keys' state and re-reads it (``owner_disabled``, ``minter_inactive``): at once in this
process, within milliseconds in others through Redis, or within ``KEYGATE_STATE_TTL`` without
it. A bulk ``QuerySet.update(is_active=False)`` or a lost permission sends no signal; the state
TTL still bounds it, and Django already refuses a disabled user's session.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from keys.middleware import session_started
from keys.models import APIKey
from keys.signals import key_changed

_WAS_ACTIVE = "_keygate_was_active"


def remember_was_active(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """``pre_save`` on the user model: note whether the stored user was active before this save."""
    if instance.pk is None or (update_fields is not None and "is_active" not in update_fields):
        return
    stored = sender._default_manager.filter(pk=instance.pk).values_list("is_active", flat=True).first()
    setattr(instance, _WAS_ACTIVE, stored)


def end_disabled_users_access(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """``post_save`` on the user model: when ``is_active`` went from True to False, end sessions and keys."""
    was_active = getattr(instance, _WAS_ACTIVE, None)
    if hasattr(instance, _WAS_ACTIVE):
        delattr(instance, _WAS_ACTIVE)
    if created or instance.is_active or not was_active:
        return
    delete_sessions(instance.pk)
    # Their own keys (owner_disabled) and the ownerless keys they minted (minter_inactive).
    held = Q(owner_id=instance.pk) | Q(owner__isnull=True, minted_by_id=instance.pk)
    keys = list(APIKey.objects.filter(held).values_list("pk", "public_id"))

    def announce() -> None:
        for key_id, public_id in keys:
            key_changed.send(sender=APIKey, key_id=key_id, public_id=public_id)

    transaction.on_commit(announce)


def delete_sessions(user_id: int) -> int:
    """Delete every stored session signed in as ``user_id``; the number deleted.

    Session rows are not indexed by user, so this decodes each unexpired session once — fine
    for the rare event of disabling a user.
    """
    target = str(user_id)
    doomed = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(session.get_decoded().get(SESSION_KEY)) == target
    ]
    if doomed:
        Session.objects.filter(pk__in=doomed).delete()
    return len(doomed)


def mark_session_start(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """``user_logged_in``: start the session's idle and absolute clocks (keys.middleware)."""
    if request is not None and hasattr(request, "session"):
        session_started(request)


def connect() -> None:
    """Connect the receivers (from ``KeysConfig.ready``)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.signals import user_logged_in
    from django.db.models.signals import post_save, pre_save

    user_model = get_user_model()
    pre_save.connect(remember_was_active, sender=user_model, dispatch_uid="keygate-user-was-active")
    post_save.connect(end_disabled_users_access, sender=user_model, dispatch_uid="keygate-user-disabled")
    user_logged_in.connect(mark_session_start, dispatch_uid="keygate-session-start")
