"""The typed options the code reads while it serves, built once per app at start-up.

`app.config` holds the raw values `config.py` validated. Each package builds its own
options from them in its `init_app` (the check-in rules in `attendance`, the webhook
options in `webhooks`, the upstream's settings in `sync`) and registers them here under a
name, once, instead of on every request or item; readers write `settings.current().rules`.
This module knows none of those packages, so the layers point one way.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app


class Settings:
    """The options the packages registered on one app, read as attributes."""

    def __init__(self) -> None:
        self._options: dict[str, Any] = {}

    def add(self, name: str, options: Any) -> None:
        if name in self._options:
            raise RuntimeError(f"the {name!r} settings are registered twice")
        self._options[name] = options

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_options"][name]
        except KeyError:
            raise AttributeError(
                f"no package registered the {name!r} settings (is its init_app in create_app?)"
            ) from None


def register(app: Flask, name: str, options: Any) -> None:
    """Make `options` readable as `settings.of(app).<name>`; a package's `init_app` calls it."""
    of(app).add(name, options)


def of(app: Flask) -> Settings:
    return app.extensions.setdefault("settings", Settings())


def current() -> Settings:
    """The settings of the app serving this request (or CLI command, or job)."""
    return of(current_app)
