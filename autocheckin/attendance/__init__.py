"""The domain core: students, events, check-ins and their time windows. No Flask here.

`init_app` builds the check-in rules and the series settings from the app's config, once:
`settings.current().rules`, `settings.current().series`.
"""

from __future__ import annotations

from typing import Any

from autocheckin import settings
from autocheckin.attendance.series import SeriesRules
from autocheckin.attendance.windows import CheckInRules


def init_app(app: Any) -> None:
    settings.register(app, "rules", CheckInRules.from_config(app.config))
    settings.register(app, "series", SeriesRules.from_config(app.config))
