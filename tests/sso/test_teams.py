"""OIDC_TEAM_MAP parsing and the roles a user's groups grant (sso/teams.py)."""

from __future__ import annotations

import pytest

from sso.teams import TeamGrant, parse_team_map, team_roles


def test_the_map_of_the_readme_parses_into_grants() -> None:
    assert parse_team_map("keygate-ml-admins=ml:admin, keygate-ml=ml:member,,") == (
        TeamGrant("keygate-ml-admins", "ml", "admin"),
        TeamGrant("keygate-ml", "ml", "member"),
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("keygate-ml", id="no team"),
        pytest.param("keygate-ml=ml", id="no role"),
        pytest.param("keygate-ml=ml:owner", id="unknown role"),
        pytest.param("=ml:admin", id="no group"),
        pytest.param("g=:admin", id="no team name"),
    ],
)
def test_a_malformed_entry_is_an_error_not_skipped(text: str) -> None:
    with pytest.raises(ValueError, match="group=team:role"):
        parse_team_map(text)


def test_a_team_name_may_hold_spaces() -> None:
    assert parse_team_map("ml-admins=ML Platform:admin") == (TeamGrant("ml-admins", "ML Platform", "admin"),)


def test_the_strongest_role_a_users_groups_grant_wins_per_team() -> None:
    grants = parse_team_map("ml-view=ml:viewer,ml-admins=ml:admin,ml=ml:member,web=web:member")
    assert team_roles(["ml", "ml-admins", "ml-view", "other"], grants) == {"ml": "admin"}
    assert team_roles(["ml-view"], grants) == {"ml": "viewer"}
    assert team_roles([], grants) == {}
