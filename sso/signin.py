"""What a verified sign-in through the provider does to Keygate's users: find or create the user
by ``sub``, refresh their name and email, and set operator rights and team roles from groups.

Rules (README, "Single sign-on"):

- A user is linked by ``(issuer, sub)`` only. The first sign-in creates a user (just in time),
  with an unusable password. An existing local account is joined only when
  ``OIDC_LINK_VERIFIED_EMAIL=true`` *and* the provider marked the email verified.
- The email must be marked verified (``email_verified: true``): otherwise the sign-in is
  refused — Keygate sends that address key notices.
- A disabled user stays disabled: the callback refuses them (an operator re-enables them).
- ``OIDC_OPERATOR_GROUPS``: a member of any of these groups is put in the Django group
  :data:`OPERATOR_GROUP` (every permission of Keygate's apps, hence "operator" for
  :mod:`keys.policy`) and may open the admin; leaving the group removes both at the next sign-in.
- ``OIDC_TEAM_MAP``: the roles the groups grant are recorded and announced through
  :data:`sso.teams.sso_memberships` (teams plug in there).
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import IntegrityError, transaction
from django.utils import timezone

from sso import crypto
from sso.models import Identity
from sso.oidc import OIDCError
from sso.teams import sso_memberships, team_roles

OPERATOR_GROUP = "Keygate operators (single sign-on)"
OPERATOR_APPS = ("keys", "gateway", "sso", "notify")
_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


def groups_of(claims: dict[str, Any]) -> list[str]:
    """The provider's groups for this user (``OIDC_GROUPS_CLAIM``; a list, or one string)."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return sorted({str(item) for item in value if isinstance(item, (str, int))})
    return []


def _email_verified(claims: dict[str, Any]) -> bool:
    # Some providers send the boolean as a string.
    return claims.get("email_verified") in (True, "true")


def _free_username(claims: dict[str, Any]) -> str:
    user_model = get_user_model()
    wanted = str(claims.get("preferred_username") or claims["email"].split("@")[0])
    base = _USERNAME_UNSAFE.sub("-", wanted)[:140] or "user"
    candidate, n = base, 1
    while user_model._default_manager.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _names(claims: dict[str, Any]) -> tuple[str, str]:
    given, family = str(claims.get("given_name") or ""), str(claims.get("family_name") or "")
    if not given and not family and claims.get("name"):
        given, _space, family = str(claims["name"]).partition(" ")
    return given[:150], family[:150]


def operator_group() -> Group:
    """The Django group SSO operators are put in, with every permission of Keygate's apps."""
    group, created = Group.objects.get_or_create(name=OPERATOR_GROUP)
    if created or not group.permissions.exists():
        group.permissions.set(Permission.objects.filter(content_type__app_label__in=OPERATOR_APPS))
    return group


def _link(claims: dict[str, Any]) -> Identity | None:
    existing = Identity.objects.select_related("user").filter(issuer=settings.OIDC_ISSUER, subject=claims["sub"])
    identity = existing.first()
    if identity is not None or not settings.OIDC_LINK_VERIFIED_EMAIL:
        return identity
    local = list(
        get_user_model()
        ._default_manager.filter(email__iexact=claims["email"])
        .exclude(sso_identities__issuer=settings.OIDC_ISSUER)[:2]
    )
    if len(local) != 1:  # none, or ambiguous: never guess
        return None
    return Identity(user=local[0], issuer=settings.OIDC_ISSUER, subject=claims["sub"])


def apply_claims(claims: dict[str, Any], *, refresh_token: str = "") -> Any:
    """The user for these verified claims (created or updated); raises OIDCError to refuse."""
    if not claims.get("sub"):
        raise OIDCError("the provider sent no subject")
    if not claims.get("email") or not _email_verified(claims):
        raise OIDCError("the provider did not send an email address it marked verified")
    groups = groups_of(claims)
    roles = team_roles(groups, settings.OIDC_TEAM_MAP)
    is_operator = bool(set(groups) & set(settings.OIDC_OPERATOR_GROUPS))
    now = timezone.now()
    for attempt in range(2):
        try:
            return _apply(claims, groups, roles, is_operator, now, refresh_token)
        except IntegrityError:
            # Two first sign-ins of one user at once (the same sub, or a username taken in
            # between): the second finds what the first made.
            if attempt:
                raise OIDCError("the user could not be saved (a concurrent sign-in?)") from None
    raise AssertionError("unreachable")


def _apply(
    claims: dict[str, Any], groups: list[str], roles: dict[str, str], is_operator: bool, now: Any, refresh_token: str
) -> Any:
    with transaction.atomic():
        identity = _link(claims)
        if identity is None:
            user = get_user_model()(username=_free_username(claims))
            user.set_unusable_password()
            identity = Identity(user=user, issuer=settings.OIDC_ISSUER, subject=claims["sub"])
        user = identity.user
        user.email = claims["email"][:254]
        user.first_name, user.last_name = _names(claims)
        was_operator = identity.is_operator
        if is_operator:
            user.is_staff = True
        elif was_operator:
            user.is_staff = False  # granted by an operator group, taken back with it
        user.save()
        identity.user = user
        identity.email = user.email
        identity.groups = groups
        identity.team_roles = roles
        identity.is_operator = is_operator
        identity.last_sign_in_at = now
        if refresh_token:
            identity.refresh_token_encrypted = crypto.seal(refresh_token)
        identity.save()
        if is_operator:
            user.groups.add(operator_group())
        else:
            user.groups.remove(*Group.objects.filter(name=OPERATOR_GROUP))
        sso_memberships.send(sender=Identity, user=user, groups=groups, team_roles=roles)
    return user
