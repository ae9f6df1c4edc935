"""Process entry point: loads .env and builds the app.

`gunicorn main:app` serves it; gunicorn.conf.py starts the scheduler in each worker
after fork (threads do not survive fork, so never at import under --preload).
`python main.py` runs the development server on HOST:PORT with the scheduler and the
outbound sender.
"""

from dotenv import load_dotenv

load_dotenv()

from autocheckin import create_app  # noqa: E402 - .env must be loaded first
from autocheckin.logs import configure_logging, warn_open_setups  # noqa: E402

app = create_app()
configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
warn_open_setups(app.config)

if __name__ == "__main__":
    from autocheckin.jobs import start_scheduler
    from autocheckin.outbound.sender import start_sender

    start_scheduler(app)
    start_sender(app)
    app.run(host=app.config["HOST"], port=app.config["PORT"], use_reloader=False)
