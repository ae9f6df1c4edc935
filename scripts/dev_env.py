"""Write a development .env from .env.example, with a fresh random JWT_SECRET_KEY.

`make run` calls this only when .env is missing, so a fresh clone runs every feature;
it never touches an existing .env.
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
target.write_text(example.replace("# JWT_SECRET_KEY=", secret, 1))
print(f"wrote {target.name} from .env.example (CHECKOUT_API_KEY=change-me; edit it)")
