"""Keeping the roster and each user's check-in sessions in sync with CheckOut."""
