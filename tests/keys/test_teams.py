"""Teams in the key store (keys.services.teams, keys.limits): creation, membership, nesting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import TestCase

from keys import services
from keys.limits import LIMIT_FIELDS, Limits, pattern_within
from keys.models import APIKey, LimitFields, Team, TeamEvent
from keys.signals import key_changed


@pytest.fixture
def team(db: None) -> Team:
    return services.team_create(
        name="search", model_patterns="gpt-*,claude-3-*", budget_tokens=1000, budget_period="day"
    )


def test_the_limit_fields_are_declared_once_for_keys_and_teams() -> None:
    declared = [f.name for f in LimitFields._meta.get_fields()]
    assert declared == list(LIMIT_FIELDS)
    for model in (APIKey, Team):
        assert set(LIMIT_FIELDS) <= {f.name for f in model._meta.get_fields()}


def test_a_team_is_created_with_its_models_limits_and_an_audit_event(team, alice) -> None:
    assert team.model_patterns == ["gpt-*", "claude-3-*"]
    assert team.limits == Limits(budget_tokens=1000, budget_period="day")
    event = team.events.get()
    assert event.action == "created" and event.details == {"name": "search"}


def test_a_team_name_is_taken_once(team) -> None:
    with pytest.raises(services.Conflict):
        services.team_create(name="search")


def test_a_team_defaults_to_every_model(db) -> None:
    assert services.team_create(name="open").model_patterns == ["*"]


def test_bad_team_limits_are_refused_like_a_keys(db) -> None:
    with pytest.raises(services.KeyServiceError) as refused:
        services.team_create(name="t", rpm_limit=0)
    assert refused.value.field == "rpm_limit"


def test_members_are_added_re_roled_and_removed_with_an_event_each(team, alice, bob) -> None:
    services.member_add(team=team, user=alice, role="admin", actor=bob, via="test", ip="10.0.0.1")
    services.member_set_role(team=team, user=alice, role="viewer", actor=bob)
    services.member_remove(team=team, user=alice, actor=bob)
    events = list(team.events.order_by("created_at", "id").values_list("action", flat=True))
    assert events == ["created", "member_added", "role_changed", "member_removed"]
    added = team.events.get(action="member_added")
    assert added.actor == bob and added.ip == "10.0.0.1" and added.details == {"user": "alice", "role": "admin"}
    assert not team.memberships.exists()


def test_a_member_is_added_once_and_a_role_must_exist(team, alice) -> None:
    services.member_add(team=team, user=alice)
    with pytest.raises(services.Conflict):
        services.member_add(team=team, user=alice)
    with pytest.raises(services.KeyServiceError):
        services.member_set_role(team=team, user=alice, role="owner")


def test_removing_someone_not_in_the_team_is_refused(team, bob) -> None:
    with pytest.raises(services.KeyServiceError):
        services.member_remove(team=team, user=bob)


@pytest.mark.parametrize(
    ("pattern", "outer", "within"),
    [
        pytest.param("gpt-4o", ["gpt-*"], True, id="a-name-inside-a-glob"),
        pytest.param("claude-3-*", ["claude-*"], True, id="a-narrower-glob"),
        pytest.param("*", ["gpt-*"], False, id="everything-is-not-inside-a-glob"),
        pytest.param("gpt-*", ["gpt-4o"], False, id="a-glob-is-not-inside-a-name"),
        pytest.param("a*", ["a*b"], False, id="a-glob-that-could-end-otherwise"),
        pytest.param("gpt-4o", ["*"], True, id="anything-inside-everything"),
    ],
)
def test_a_pattern_is_within_the_teams_only_when_every_model_it_matches_is(pattern, outer, within) -> None:
    assert pattern_within(pattern, outer) is within


def test_a_key_in_a_team_may_only_narrow_the_teams_models(team) -> None:
    key, _ = services.key_create(name="k", model_patterns="gpt-4o,claude-3-*", team=team)
    assert key.team == team
    with pytest.raises(services.OutsideTeam) as refused:
        services.key_create(name="k2", model_patterns="gpt-4o,o1", team=team)
    assert refused.value.field == "model_patterns" and "o1" in refused.value.message
    with pytest.raises(services.OutsideTeam):
        services.key_update(key=key, model_patterns="*")


def test_a_management_key_in_a_team_calls_no_model(team) -> None:
    key, _ = services.key_create(name="m", model_patterns="", is_management=True, team=team)
    assert key.team == team and key.model_patterns == []


def test_rotation_and_replacement_keep_the_team(team) -> None:
    key, _ = services.key_create(name="k", model_patterns="gpt-4o", team=team)
    new, _ = services.key_rotate(key=key, grace=timedelta(0))
    assert new.team == team
    services.key_revoke(key=new)
    replacement, _ = services.key_replace(key=new)
    assert replacement.team == team


def test_the_gateway_state_carries_the_teams_models_and_limits(team) -> None:
    key, _ = services.key_create(name="k", model_patterns="gpt-*", team=team, rpm_limit=5)
    state = services.get_key_state(key.pk)
    assert state.team.name == "search" and state.team.limits.budget_tokens == 1000
    assert state.limits.rpm_limit == 5
    assert state.allows_model("gpt-4o")
    assert state.model_refused_by("claude-3-opus") == "key"


def test_narrowing_the_teams_models_narrows_its_keys_at_once(team) -> None:
    key, _ = services.key_create(name="k", model_patterns="gpt-*", team=team)
    services.team_update(team=team, model_patterns="gpt-4o")
    state = services.get_key_state(key.pk)
    assert state.allows_model("gpt-4o") and state.model_refused_by("gpt-4o-mini") == "team"


def test_an_address_outside_the_teams_networks_is_refused_by_the_team(team) -> None:
    services.team_update(team=team, allowed_ips="10.0.0.0/8")
    key, _ = services.key_create(name="k", model_patterns="gpt-4o", team=team)
    state = services.get_key_state(key.pk)
    assert state.ip_allowed("10.1.2.3")
    assert state.ip_refused_by("192.168.0.1") == "team"


class TeamChangesReachTheGateway(TestCase):
    def test_a_team_change_announces_each_of_its_keys_after_commit(self) -> None:
        team = services.team_create(name="t")
        key, _ = services.key_create(name="k", model_patterns="*", team=team)
        services.key_create(name="personal", model_patterns="*")
        heard: list[int] = []

        def listen(sender, key_id, **kwargs):
            heard.append(key_id)

        key_changed.connect(listen)
        try:
            with self.captureOnCommitCallbacks(execute=True):
                services.team_update(team=team, rpm_limit=10)
        finally:
            key_changed.disconnect(listen)
        assert heard == [key.pk]
        assert TeamEvent.objects.filter(team=team, action="updated").get().details == {"fields": ["rpm_limit"]}

    def test_an_unchanged_team_writes_nothing(self) -> None:
        team = services.team_create(name="t", rpm_limit=10)
        services.team_update(team=team, rpm_limit=10)
        assert TeamEvent.objects.filter(team=team).count() == 1
        assert User.objects.count() == 0


def test_the_api_and_the_cli_read_the_one_declaration_of_limits() -> None:
    from keys.api.serializers import LimitsSerializer
    from keys.management.limitargs import LIMIT_OPTIONS

    assert list(LimitsSerializer().fields) == list(LIMIT_FIELDS)
    assert [field for _, field in LIMIT_OPTIONS] == list(LIMIT_FIELDS)
