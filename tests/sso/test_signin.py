"""What a verified sign-in does to users (sso/signin.py): found by sub, never by email unless
asked; operators by group, taken back with the group."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from keys import policy
from sso.models import Identity
from sso.oidc import OIDCError
from sso.signin import apply_claims

pytestmark = [pytest.mark.django_db]

SSO = {"OIDC_ISSUER": "https://id.example.com", "OIDC_OPERATOR_GROUPS": ["keygate-ops"], "OIDC_TEAM_MAP": ()}


def _claims(sub: str = "u-1", email: str = "erin@example.com", **more: Any) -> dict[str, Any]:
    return {"sub": sub, "email": email, "email_verified": True, "preferred_username": "erin", **more}


@override_settings(**SSO)
def test_the_first_sign_in_creates_a_user_without_a_usable_password() -> None:
    user = apply_claims(_claims(name="Erin Brockovich"))
    assert (user.username, user.first_name, user.last_name) == ("erin", "Erin", "Brockovich")
    assert not user.has_usable_password()


@override_settings(**SSO)
def test_a_later_sign_in_finds_the_user_by_subject_even_with_a_new_email() -> None:
    first = apply_claims(_claims())
    again = apply_claims(_claims(email="erin@new.example.com"))
    assert again.pk == first.pk and again.email == "erin@new.example.com"


@override_settings(**SSO)
def test_an_existing_local_account_with_the_same_email_is_not_taken_over(alice) -> None:
    user = apply_claims(_claims(email="alice@example.com", preferred_username="alice"))
    assert user.pk != alice.pk and user.username == "alice-2"


@override_settings(**SSO, OIDC_LINK_VERIFIED_EMAIL=True)
def test_with_linking_on_a_verified_email_joins_the_local_account(alice) -> None:
    assert apply_claims(_claims(email="ALICE@example.com")).pk == alice.pk
    assert Identity.objects.get(user=alice).subject == "u-1"


@override_settings(**SSO, OIDC_LINK_VERIFIED_EMAIL=True)
@pytest.mark.parametrize("verified", [False, "false", None])
def test_an_unverified_email_is_refused_and_links_nothing(alice, verified) -> None:
    with pytest.raises(OIDCError):
        apply_claims(_claims(email="alice@example.com", email_verified=verified))
    assert not Identity.objects.exists()
    assert get_user_model().objects.count() == 1


@override_settings(**SSO)
def test_an_operator_group_grants_operator_rights_and_losing_it_takes_them_back() -> None:
    user = apply_claims(_claims(groups=["keygate-ops", "staff"]))
    user = get_user_model().objects.get(pk=user.pk)  # fresh permission cache
    assert user.is_staff and policy.can_change_all_keys(user)
    apply_claims(_claims(groups=["staff"]))
    user = get_user_model().objects.get(pk=user.pk)
    assert not user.is_staff and not policy.can_view_all_keys(user)


@override_settings(**SSO)
def test_staff_rights_given_by_an_operator_are_not_taken_by_a_sign_in() -> None:
    user = apply_claims(_claims())
    get_user_model().objects.filter(pk=user.pk).update(is_staff=True)
    assert apply_claims(_claims()).is_staff


@override_settings(**SSO)
def test_groups_may_come_as_one_string() -> None:
    apply_claims(_claims(groups="keygate-ops"))
    assert Identity.objects.get().groups == ["keygate-ops"]


@override_settings(**SSO)
def test_a_disabled_users_session_no_longer_signs_them_in() -> None:
    from sso.backend import OIDCBackend

    user = apply_claims(_claims())
    assert OIDCBackend().get_user(user.pk) == user
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert OIDCBackend().get_user(user.pk) is None
