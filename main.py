"""Process entry point: loads .env, builds the app, starts the scheduler when enabled.

`gunicorn main:app` serves it (see gunicorn.conf.py); `python main.py` runs the
development server on HOST:PORT (default 127.0.0.1:5000).
"""

from dotenv import load_dotenv

load_dotenv()

from autocheckin import create_app  # noqa: E402 - .env must be loaded first
from autocheckin.jobs import start_scheduler  # noqa: E402
from autocheckin.logs import configure_logging  # noqa: E402

app = create_app()
configure_logging(app.config["LOG_LEVEL"])
if app.config["SCHEDULER_ENABLED"]:
    start_scheduler(app)

if __name__ == "__main__":
    app.run(host=app.config["HOST"], port=app.config["PORT"])
