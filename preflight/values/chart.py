"""What the chart's values mean, in one place: the defaults the install guide documents, the
Vision switch, the pull Secrets' names."""

from __future__ import annotations

from typing import Any

from preflight.values.load import Values
from preflight.values.rules import RULES

#: The install guide's "Optional (sensible defaults provided)" table, as the rules hold it:
#: what the chart uses when a value is not set.
GUIDE_DEFAULTS: dict[str, Any] = {
    rule.path: rule.default for rule in RULES if rule.default is not None
}
VISION_OFF = "Vision is disabled (vision.enabled: false)"


def setting(values: Values, path: str) -> Any:
    """The value at `path`, or the chart's default when it is not set."""
    value = values.get(path)
    return GUIDE_DEFAULTS.get(path) if value is None or value == "" else value


def pull_secret_names(values: Values) -> tuple[str, ...]:
    """The Secret names in global.imagePullSecrets (`- name: x` entries or plain strings)."""
    entries = values.get("global.imagePullSecrets") or []
    names = (entry.get("name") if isinstance(entry, dict) else entry for entry in entries)
    return tuple(str(name) for name in names if name)


def vision_enabled(values: Values) -> bool:
    """The Vision tier (detectors, Triton, map-matching) is on unless vision.enabled is false."""
    return values.enabled("vision.enabled", GUIDE_DEFAULTS["vision.enabled"])


def vision_applies(values: Values) -> str | None:
    """The `applies` of every Vision check: skipped, with the reason, when Vision is off."""
    return None if vision_enabled(values) else VISION_OFF
