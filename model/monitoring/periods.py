"""The periods quality is cut by: light, so the settings catalog can offer them without pandas."""

from __future__ import annotations

PERIODS = ("day", "week", "month")
