"""The one error of retargeting, below the project's error root."""

from ..errors import ExOmniError


class PresetError(ExOmniError, ValueError):
    """A preset file or mapping that cannot be used; the message says what to fix."""
