"""Attendance flowing out: an iCalendar feed, Moodle CSV and HR summaries."""
