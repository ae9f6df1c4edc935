"""`python -m autocheckin.outbound`: a process that only delivers outbound webhooks.

For deployments whose web processes should only serve (OUTBOUND_SENDER_ENABLED=false on
them) or as extra delivery capacity. Any number may run: claims keep each delivery to one
sender at a time, and deliveries left by a process that died are picked up here too.
"""

from __future__ import annotations

import logging
import signal
import threading

from dotenv import load_dotenv

from autocheckin import create_app
from autocheckin.logs import configure_logging
from autocheckin.outbound.sender import Sender

log = logging.getLogger("autocheckin.outbound")


def main() -> None:
    load_dotenv()
    app = create_app()
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        log.info("outbound worker: signal %s, stopping", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sender = Sender(app).start()
    log.info("outbound worker started as %s", sender.holder)
    stopping.wait()
    sender.stop()


if __name__ == "__main__":
    main()
