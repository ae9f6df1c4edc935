"""What the core announces, for whoever listens (outbound webhooks today).

The core sends these inside the write transaction that makes the change, with the
session as the sender, so a listener's writes (the outbox row) commit or roll back with
it. The core imports none of its listeners: they connect when their package is imported.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# sender: the session; records: list[checkins.Recorded], every check-in the transaction
# stored (one for a single check-in, up to a batch's worth).
attendances_recorded = _signals.signal("attendances-recorded")
# sender: the session; event: the new Event (not yet flushed).
event_created = _signals.signal("event-created")
# sender: the session; event: the Event; changed: the names of the fields that changed.
event_updated = _signals.signal("event-updated")
# sender: the session; changes: list[corrections.Change], what one correction changed
# (a status set, a void or restore, a time changed, a bulk mark, a merge's moves).
attendance_corrected = _signals.signal("attendance-corrected")
# sender: the session; event_ids: the events a series' generation just inserted (rows, not
# ORM objects: read them by id).
occurrences_created = _signals.signal("occurrences-created")
# sender: the session; findings: list[dict], the `fraud.detected` data of each finding a
# detector pass just made (the findings package sends it; the core owns every signal).
findings_created = _signals.signal("findings-created")
# sender: the session; alerts: the absence alerts (`alerts.evaluation.NewAlert`) the
# transaction inserted, each with the person's identity, the rule and its figures. Sent by
# the alerts feature, declared here so that its listeners (outbound) need not import it.
alert_created = _signals.signal("alert-created")
