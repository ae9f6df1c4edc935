"""Who this process is, for the leases and run records that name their holder."""

from __future__ import annotations

import os
import socket
import uuid


def process_identity() -> str:
    """host:pid:random, computed after fork so every worker differs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
