"""The ceiling for the HTTP benchmarks: a bare Flask app with the routes' shapes and no work.

Served by the same gunicorn command and gunicorn.conf.py as AutoCheckin, so the ratio
measures what AutoCheckin adds over Flask and gunicorn themselves.
"""

from flask import Flask, request

app = Flask(__name__)
# gunicorn.conf.py starts AutoCheckin's scheduler and sender per worker unless these say no.
app.config["SCHEDULER_ENABLED"] = False
app.config["OUTBOUND_SENDER_ENABLED"] = False


@app.post("/api/webhook/<path:endpoint>")
def ingest(endpoint: str):
    """Parse the JSON body and answer 201, as a webhook's success does."""
    payload = request.get_json()
    return {"success": True, "endpoint": endpoint, "keys": len(payload)}, 201


@app.get("/api/v1/state")
def state():
    return {"success": True, "message": "state", "data": {"connected": False}}


@app.get("/export.csv")
def export():
    """Stream `rows` CSV rows made in Python: the ceiling for the export benchmark."""
    import csv
    import io

    from flask import Response

    rows = int(request.args.get("rows", "1000"))

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(
            ("Student ID", "Student Email", "Session ID", "Status", "Timestamp", "Method")
        )
        for number in range(rows):
            writer.writerow(
                (number, f"s{number}@x.io", 7, "present", "2026-01-01T10:00:00Z", "bench")
            )
            if number % 2000 == 1999:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()

    return Response(lines(), content_type="text/csv; charset=utf-8")
