"""Write a development .env from .env.example: a fresh random JWT_SECRET_KEY, and the
guides' basic setup (unsigned webhooks, a keyless Discord bot) switched on.

`make run` calls this only when .env is missing, so a fresh clone runs every feature and
every sample client of the guides; it never touches an existing .env.
"""

import secrets
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
target = root / ".env"
if target.exists():
    sys.exit(0)
example = (root / ".env.example").read_text()
secret = f"JWT_SECRET_KEY={secrets.token_urlsafe(48)}"
BASIC_SETUP = """
# --- Development: the guides' basic setup (never on a public server; see SECURITY.md) ---
# Unsigned webhooks and a keyless Discord bot, so the guides' samples work as printed.
WEBHOOK_REQUIRE_SIGNATURE=false
DISCORD_ALLOW_KEYLESS=true
"""
session_secret = f"SECRET_KEY={secrets.token_urlsafe(48)}"
filled = example.replace("# JWT_SECRET_KEY=", secret, 1).replace("# SECRET_KEY=", session_secret, 1)
target.write_text(filled + BASIC_SETUP)
print(f"wrote {target.name} from .env.example (CHECKOUT_API_KEY=change-me; edit it)")
