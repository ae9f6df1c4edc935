"""Every table, imported in one place so Alembic and `create_all` see them all."""

from autocheckin.alerts.models import Alert, AlertRuleState
from autocheckin.attendance.models import (
    Attendance,
    AttendanceChange,
    CheckInOrigin,
    Enrolment,
    Event,
    EventSeries,
    Excuse,
    SeriesEnrolment,
    Student,
)
from autocheckin.auth.api_keys import ApiKey
from autocheckin.auth.models import Account, AccountSession
from autocheckin.findings.models import Finding
from autocheckin.integrations.models import CalendarFeed
from autocheckin.jobs.models import JobRun, Lease
from autocheckin.outbound.models import Delivery, DeliveryAttempt, OutboxEntry, Subscription
from autocheckin.ratelimits import RateLimitHit
from autocheckin.state import StateEntry
from autocheckin.sync.models import RosterEntry, UserRefresh
from autocheckin.webhooks.models import WebhookRequest

__all__ = [
    "Alert",
    "AlertRuleState",
    "Account",
    "AccountSession",
    "ApiKey",
    "Attendance",
    "AttendanceChange",
    "CalendarFeed",
    "CheckInOrigin",
    "Delivery",
    "DeliveryAttempt",
    "Enrolment",
    "Event",
    "EventSeries",
    "Excuse",
    "Finding",
    "JobRun",
    "Lease",
    "OutboxEntry",
    "RateLimitHit",
    "RosterEntry",
    "SeriesEnrolment",
    "StateEntry",
    "Student",
    "Subscription",
    "UserRefresh",
    "WebhookRequest",
]
