"""Every write to the key store (keys and teams), and the one read the gateway uses.

A package of modules by concern — ``validation`` (typed refusals and input rules), ``state``
(what the gateway reads: :class:`KeyState`, :func:`verify_key`), ``keys`` (key writes) and
``teams`` (team and membership writes) — re-exported here, so callers write
``from keys import services`` and ``services.key_create(...)``.
"""

from keys.services.keys import (
    find_key,
    get_user,
    key_create,
    key_pause,
    key_replace,
    key_resume,
    key_revoke,
    key_rotate,
    key_update,
)
from keys.services.state import KeyState, TeamState, get_hasher, get_key_state, verify_key
from keys.services.teams import (
    find_team,
    member_add,
    member_remove,
    member_set_role,
    team_create,
    team_update,
)
from keys.services.validation import (
    Conflict,
    KeyAlreadyRevoked,
    KeyServiceError,
    OutsideTeam,
    clean_allowed_ips,
    clean_expires_at,
    clean_limits,
    clean_model_patterns,
    clean_name,
    model_allowed,
    parse_duration,
)

__all__ = [
    "Conflict",
    "KeyAlreadyRevoked",
    "KeyServiceError",
    "KeyState",
    "OutsideTeam",
    "TeamState",
    "clean_allowed_ips",
    "clean_expires_at",
    "clean_limits",
    "clean_model_patterns",
    "clean_name",
    "find_key",
    "find_team",
    "get_hasher",
    "get_key_state",
    "get_user",
    "key_create",
    "key_pause",
    "key_replace",
    "key_resume",
    "key_revoke",
    "key_rotate",
    "key_update",
    "member_add",
    "member_remove",
    "member_set_role",
    "model_allowed",
    "parse_duration",
    "team_create",
    "team_update",
    "verify_key",
]
