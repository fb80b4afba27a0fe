"""``python manage.py sso show`` — the single sign-on configuration in force and the exact
redirect URI to register with the provider.

``python manage.py sso sync [--dry-run]`` — disable the users the provider no longer knows.
OpenID Connect has no standard way to list a provider's users, so sync asks about each SSO user
the one standard question it can: with ``offline_access`` in OIDC_SCOPES, Keygate kept the
refresh token of the user's last sign-in, and sync redeems it; a provider that answers
``invalid_grant`` no longer honours that user's grant (deleted, disabled, or consent withdrawn),
so the user is disabled — which ends their sessions and, within a second, their keys
(keys/receivers.py). Any other failure (network, 5xx) changes nothing. A refresh that works
also fetches the user's claims from the userinfo endpoint and applies them as a sign-in would
(groups → operator rights and team memberships, email, name): losing a group at the provider
takes effect at the next sync, not only at the next sign-in. Users without a refresh
token cannot be asked: with ``OIDC_SYNC_MAX_AGE_DAYS`` set, those who have not signed in for
that long are disabled instead; otherwise they are listed as unchecked. Run it from cron.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from sso import crypto, oidc, signin
from sso.backend import fetch_userinfo, token_request
from sso.models import Identity
from sso.urls_public import callback_url


class Command(BaseCommand):
    help = "Single sign-on: show the configuration (show), or disable users the provider no longer knows (sync)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("show", help="print the configuration in force and the redirect URI to register")
        sync = sub.add_parser("sync", help="disable the users the provider no longer knows")
        sync.add_argument("--dry-run", action="store_true", help="say what would be disabled; change nothing")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "show":
            self._show()
        else:
            self._sync(dry_run=options["dry_run"])

    def _show(self) -> None:
        rows = [
            ("enabled", "yes" if settings.OIDC_ENABLED else "no (set OIDC_ISSUER)"),
            ("issuer", settings.OIDC_ISSUER or "-"),
            ("discovery", oidc.discovery_url(settings.OIDC_ISSUER) if settings.OIDC_ENABLED else "-"),
            ("client id", settings.OIDC_CLIENT_ID or "-"),
            ("client secret", "set" if settings.OIDC_CLIENT_SECRET else "-"),
            ("scopes", " ".join(settings.OIDC_SCOPES)),
            ("groups claim", settings.OIDC_GROUPS_CLAIM),
            ("button", f"Sign in with {settings.OIDC_PROVIDER_NAME}" if settings.OIDC_ENABLED else "-"),
            ("operator groups", ", ".join(settings.OIDC_OPERATOR_GROUPS) or "-"),
            ("team map", ", ".join(f"{g.group}={g.team}:{g.role}" for g in settings.OIDC_TEAM_MAP) or "-"),
            ("link verified email", "yes" if settings.OIDC_LINK_VERIFIED_EMAIL else "no"),
            ("password sign-in", "on" if settings.KEYGATE_PASSWORD_LOGIN else "off"),
            ("break-glass user", settings.KEYGATE_BREAK_GLASS_USER or "-"),
            ("public URL", settings.KEYGATE_PUBLIC_URL or "- (taken from each request's Host)"),
            ("redirect URI", callback_url()),
        ]
        width = max(len(name) for name, _value in rows)
        for name, value in rows:
            self.stdout.write(f"{name:<{width}}  {value}")
        if not settings.KEYGATE_PUBLIC_URL:
            self.stdout.write("Set KEYGATE_PUBLIC_URL so the redirect URI above is the address people use.")
        if settings.OIDC_ENABLED:
            try:
                provider = oidc.discover()
            except oidc.OIDCError as error:
                self.stdout.write(f"{'provider':<{width}}  unreachable: {error}")
            else:
                algorithms = ", ".join(provider.algorithms)
                self.stdout.write(f"{'provider':<{width}}  reachable; ID tokens signed with {algorithms}")

    def _sync(self, *, dry_run: bool) -> None:
        if not settings.OIDC_ENABLED:
            raise CommandError("single sign-on is off (OIDC_ISSUER is not set)")
        provider = oidc.discover()
        now = timezone.now()
        max_age = timedelta(days=settings.OIDC_SYNC_MAX_AGE_DAYS) if settings.OIDC_SYNC_MAX_AGE_DAYS else None
        counts = {"kept": 0, "disabled": 0, "unchecked": 0, "errors": 0}
        identities = Identity.objects.select_related("user").filter(issuer=settings.OIDC_ISSUER, user__is_active=True)
        for identity in identities:
            verdict = self._ask(provider, identity, now=now, max_age=max_age, dry_run=dry_run)
            counts[verdict] += 1
            if verdict != "kept":
                self.stdout.write(f"{verdict:<10} {identity.user.get_username()} ({identity.subject})")
        summary = ", ".join(f"{n} {name}" for name, n in counts.items())
        self.stdout.write(("dry run: " if dry_run else "") + summary)

    def _ask(self, provider: oidc.Discovery, identity: Identity, *, now: Any, max_age: Any, dry_run: bool) -> str:
        refresh_token = crypto.unseal(identity.refresh_token_encrypted)
        if refresh_token:
            try:
                answer = token_request(provider, {"grant_type": "refresh_token", "refresh_token": refresh_token})
            except oidc.TokenRefused as refused:
                if str(refused) != "invalid_grant":
                    self.stderr.write(f"{identity.user.get_username()}: the provider answered {refused}")
                    return "errors"
                return self._disable(identity, dry_run=dry_run)
            except oidc.OIDCError as error:
                self.stderr.write(f"{identity.user.get_username()}: {error}")
                return "errors"
            if not dry_run:
                rotated = str(answer.get("refresh_token") or refresh_token)
                try:
                    claims = fetch_userinfo(provider, str(answer.get("access_token") or ""), identity.subject)
                    if claims:
                        signin.apply_claims(claims, refresh_token=rotated)
                except oidc.OIDCError as error:
                    self.stderr.write(f"{identity.user.get_username()}: claims not applied: {error}")
                identity.refresh_from_db()
                identity.last_sync_at = now
                identity.refresh_token_encrypted = crypto.seal(rotated)
                identity.save(update_fields=["last_sync_at", "refresh_token_encrypted"])
            return "kept"
        if max_age is not None and identity.last_sign_in_at < now - max_age:
            return self._disable(identity, dry_run=dry_run)
        return "unchecked"

    def _disable(self, identity: Identity, *, dry_run: bool) -> str:
        if not dry_run:
            user = identity.user
            user.is_active = False
            user.save(update_fields=["is_active"])  # keys.receivers ends their sessions and keys
            Identity.objects.filter(pk=identity.pk).update(refresh_token_encrypted="", last_sync_at=timezone.now())
        return "disabled"
