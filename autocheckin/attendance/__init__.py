"""The domain core: students, events, check-ins and their time windows. No Flask here."""
