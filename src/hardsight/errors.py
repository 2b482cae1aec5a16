"""One family of errors the CLI can print without a traceback: each names the file, value and fix."""


class HardsightError(Exception):
    """Base of every error hardsight raises on purpose."""


class ConfigError(HardsightError):
    """A setting is unknown, of the wrong type, or out of range."""


class DataError(HardsightError):
    """A dataset, image or label cannot be used as given."""


class RunError(HardsightError):
    """A run folder is missing, incomplete, or would be overwritten."""


class UnknownTargetError(ConfigError):
    """A grid's target names none of the run's classes (told apart from other bad solve requests by type)."""
