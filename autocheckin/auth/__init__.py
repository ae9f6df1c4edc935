"""API keys, and later JWT and passwords."""
