"""Every table, imported in one place so Alembic and `create_all` see them all."""

from autocheckin.attendance.models import Attendance, Event, Student
from autocheckin.state import StateEntry
from autocheckin.webhooks.models import WebhookRequest

__all__ = ["Attendance", "Event", "StateEntry", "Student", "WebhookRequest"]
