"""Corrections and the audit of their history, by hand: `flask attendance …`, `flask audit …`."""
