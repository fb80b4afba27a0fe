"""Announcements of key changes. Caches listen to drop what they hold for a key.

``key_changed`` is sent after the change commits, with ``key_id`` and ``public_id``.

``key_leaked`` is sent after a key revoked because it leaked commits (:mod:`keys.leaks`), with
``key_id``, ``public_id``, ``owner_id``, ``url`` and ``source``. The owner's notice does not
hang on it: notify/events.py writes it from the ``revoked`` KeyEvent (``reason: leaked``) in the
revocation's own transaction, so a crash after commit cannot lose it.
"""

from django.dispatch import Signal

key_changed = Signal()
key_leaked = Signal()
