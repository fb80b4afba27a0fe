"""Who may do what with keys: the one policy the dashboard, the REST API, the admin and the CLI ask.

Everyone signed in (and active) may see and change their own keys. Operator powers follow
Django's model permissions on ``keys.APIKey`` — never ``is_staff`` alone (SECURITY.md, "Who may
do what"):

- ``keys.view_apikey`` (or ``keys.change_apikey``, which implies it, as in the admin): see every
  key, including ownerless (operator-owned) ones;
- ``keys.change_apikey``: change, rotate and revoke keys that are not one's own;
- ``keys.add_apikey``: create a key for someone else, or an ownerless key.

Superusers have every permission (Django's ``has_perm``). A key outside what a user may see does
not exist for them: callers answer 404, never 403. A key they may see but not change is a 403.

An ownerless management key acts as :class:`MintedKeyUser`: with its minter's permissions,
checked on every request, never more. It stops working (``KeyState.inactive_reason`` →
``minter_inactive``) when the minter is disabled or loses ``keys.add_apikey``, the permission
that let them mint it. One made by the CLI has no minter: the CLI is run by whoever holds the
server's shell, database and secrets, so such a key holds every ``keys`` permission — and
nothing else.
"""

from __future__ import annotations

from typing import Any

VIEW_ALL = "keys.view_apikey"
CHANGE_ALL = "keys.change_apikey"
ADD_FOR_OTHERS = "keys.add_apikey"
KEY_PERMISSIONS = frozenset({VIEW_ALL, CHANGE_ALL, ADD_FOR_OTHERS})
# What a minter must keep for their ownerless management keys to keep working.
MINTER_PERMISSION = ADD_FOR_OTHERS


def is_signed_in(user: Any) -> bool:
    """An authenticated, active user (or key identity)."""
    return user is not None and bool(getattr(user, "is_authenticated", False)) and bool(user.is_active)


def _has(user: Any, permission: str) -> bool:
    return is_signed_in(user) and user.has_perm(permission)


def can_view_all_keys(user: Any) -> bool:
    """May ``user`` see every key (others' and ownerless ones)?"""
    return _has(user, VIEW_ALL) or _has(user, CHANGE_ALL)


def can_change_all_keys(user: Any) -> bool:
    """May ``user`` change, rotate and revoke keys that are not their own?"""
    return _has(user, CHANGE_ALL)


def can_create_for_others(user: Any) -> bool:
    """May ``user`` choose a key's owner (another user, or none)?"""
    return _has(user, ADD_FOR_OTHERS)


def owns(user: Any, key: Any) -> bool:
    """Is ``key`` ``user``'s own? (An identity without a database row owns nothing.)"""
    return is_signed_in(user) and user.pk is not None and key.owner_id == user.pk


def can_view_key(user: Any, key: Any) -> bool:
    return owns(user, key) or can_view_all_keys(user)


def can_change_key(user: Any, key: Any) -> bool:
    """May ``user`` edit, rotate or revoke ``key``?"""
    return owns(user, key) or can_change_all_keys(user)


def minter_may_act(minter: Any) -> bool:
    """Does an ownerless management key minted by ``minter`` still work? (None: made by the CLI.)"""
    return minter is None or _has(minter, MINTER_PERMISSION)


class MintedKeyUser:
    """The identity of an ownerless management key on the REST API.

    Not a database user (``pk`` is None, so it owns no key and writes record no actor; their
    ``via`` names the key). Its permissions are its minter's, looked up at each request; a
    CLI-made key (no minter) holds every ``keys`` permission.
    """

    pk = None
    id = None
    is_staff = False
    is_superuser = False
    is_anonymous = False
    is_authenticated = True
    username = ""

    def __init__(self, minter: Any = None) -> None:
        self.minter = minter

    @property
    def is_active(self) -> bool:
        return minter_may_act(self.minter)

    def has_perm(self, permission: str, obj: Any = None) -> bool:
        if permission not in KEY_PERMISSIONS:
            return False
        if self.minter is None:
            return True
        return _has(self.minter, permission)

    def get_username(self) -> str:
        return ""

    def __str__(self) -> str:
        return "operator key"


def acting_user(user: Any, state: Any) -> Any:
    """Who a REST API request acts as: ``user``, unless ``state`` (a ``KeyState``) is an
    ownerless management key — then a :class:`MintedKeyUser` for its minter."""
    if not getattr(state, "is_management", False) or state.owner_id is not None:
        return user
    if state.minted_by_id is None:
        return MintedKeyUser(None)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser

    # A minter that no longer exists (PROTECT makes this a race at most) may do nothing.
    return MintedKeyUser(get_user_model().objects.filter(pk=state.minted_by_id).first() or AnonymousUser())
