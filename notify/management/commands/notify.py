"""``python manage.py notify run`` — the notification worker (long-running; systemd unit in the
README). ``python manage.py notify once`` — one pass, for cron.

Each pass: the expiry and budget scans (at most every ``--scan-every`` seconds in ``run``), then
fan-out of new events, then every delivery that is due. Nothing here runs in a web request.
SIGTERM and SIGINT end ``run`` after the current pass; a pass interrupted harder loses nothing
(docs: notify/delivery.py, "At least once").
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections
from django.utils import timezone

from notify import delivery, events


def one_pass(*, scan: bool = True) -> dict[str, int]:
    """Scan (when asked), fan out and deliver once; what was done, counted."""
    now = timezone.now()
    done = {"expiry": 0, "budget": 0}
    if scan:
        done["expiry"] = events.scan_expiry(now)
        done["budget"] = events.scan_budgets(now) + events.scan_team_budgets(now)
    done["events"] = delivery.fan_out(now)
    done.update(delivery.deliver_due(timezone.now()))
    return done


class Command(BaseCommand):
    help = "Deliver notifications: run (the worker) or once (one pass, for cron)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="the long-running worker")
        run.add_argument("--interval", type=float, default=5.0, help="seconds between delivery passes (5)")
        run.add_argument("--scan-every", type=float, default=60.0, help="seconds between expiry/budget scans (60)")
        sub.add_parser("once", help="one pass: scans, fan-out, due deliveries")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "once":
            self.stdout.write(" ".join(f"{name}={n}" for name, n in one_pass().items()))
        else:
            self._run(options["interval"], options["scan_every"])

    def _run(self, interval: float, scan_every: float) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"notify: worker started (every {interval:g} s, scans every {scan_every:g} s)")
        self.stdout.flush()
        last_scan = -scan_every
        while not stop.is_set():
            close_old_connections()
            scan = time.monotonic() - last_scan >= scan_every
            try:
                done = one_pass(scan=scan)
            except Exception as error:
                self.stderr.write(f"notify: pass failed: {type(error).__name__}: {error}")
            else:
                if scan:
                    last_scan = time.monotonic()
                if any(done.values()):
                    self.stdout.write("notify: " + " ".join(f"{name}={n}" for name, n in done.items() if n))
                    self.stdout.flush()
            stop.wait(interval)
        self.stdout.write("notify: worker stopped")
