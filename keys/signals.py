"""Announcements of key changes. Caches listen to drop what they hold for a key.

``key_changed`` is sent after the change commits, with ``key_id`` and ``public_id``.

``key_leaked`` is sent after a key revoked because it leaked commits (:mod:`keys.leaks`), with
``key_id``, ``public_id``, ``owner_id``, ``url`` and ``source``. It is the hook where "tell the
owner (and, once teams exist, the team's admins) where their key leaked" plugs in: nothing
listens to it yet, so today no notice is sent (notifications are a later issue).
"""

from django.dispatch import Signal

key_changed = Signal()
key_leaked = Signal()
