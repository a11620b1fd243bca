"""Exceptions with messages meant for users (CLI and UI print them as they are)."""


class ExplorerError(Exception):
    """Base class: anything a user can cause and should read about in one line."""


class ConfigError(ExplorerError):
    """A model or training config has a bad value."""


class DatasetError(ExplorerError):
    """A dataset is missing, malformed or too large."""


class CheckpointError(ExplorerError):
    """A checkpoint file is unsafe, corrupt or does not match its model."""


class TrainingDiverged(ExplorerError):
    """The loss became NaN or infinite; the model holds the last good weights."""
