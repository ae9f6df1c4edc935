"""The release, for the User-Agent, the OpenAPI document and the root page; a module of
its own so that naming it does not import the app factory (`autocheckin/__init__.py`)."""

__version__ = "1.0.0"
