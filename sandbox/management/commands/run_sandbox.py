"""`manage.py run_sandbox [--port 8443] [--host 127.0.0.1]`: the local PG&E in the
foreground, its state kept in `var/sandbox/state.json` so a restart keeps issued tokens."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from sandbox.certs import certs_ensure
from sandbox.config import sandbox_config
from sandbox.demo import DEMO_CUSTOMERS
from sandbox.server import SandboxServer
from sandbox.state import SandboxState


class Command(BaseCommand):
    help = "Run the sandbox PG&E (consent page, token endpoint, Batch APIs, notifications)."

    def add_arguments(self, parser: CommandParser) -> None:
        default_port = getattr(settings, "GASCAP_SANDBOX_PORT", 8443)
        parser.add_argument("--port", type=int, default=default_port)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--state", default=None, help="state file (default var/sandbox/)")
        parser.add_argument("--fresh", action="store_true", help="forget the saved state")
        parser.add_argument("--notify-url", default=None, help="where BatchLists are POSTed")

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("sandbox").setLevel(logging.INFO)
        overrides = {"notify_url": options["notify_url"]} if options["notify_url"] else {}
        config = sandbox_config(**overrides)
        certs_ensure(directory=config.cert_dir)
        var_dir = Path(getattr(settings, "VAR_DIR", "var"))
        state_path = (
            Path(options["state"]) if options["state"] else var_dir / "sandbox" / "state.json"
        )
        if options["fresh"] and state_path.exists():
            state_path.unlink()
        state = SandboxState(path=state_path)
        server = SandboxServer(state, config, host=options["host"], port=options["port"])
        self.stdout.write(f"Sandbox PG&E on {server.base_url} (listening on {options['host']})")
        self.stdout.write(f"  consent page   {server.base_url}/myAuthorization")
        self.stdout.write(f"  token endpoint {server.base_url}/datacustodian/oauth/v2/token")
        self.stdout.write(f"  API base       {server.api_base}")
        self.stdout.write(f"  control        {server.base_url}/sandbox/control/")
        self.stdout.write(f"  notifications  -> {config.notify_url or '(none configured)'}")
        for customer in DEMO_CUSTOMERS:
            self.stdout.write(
                f"  customer {customer.key:<9} {customer.name:<20} "
                f"subscription {customer.subscription_id}"
            )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.app.notifier.cancel_all()
            self.stdout.write("Sandbox stopped")
