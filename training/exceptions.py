"""Errors the training services raise; views and commands turn them into messages."""


class TrainingError(Exception):
    """Base class for the training app's expected failures."""


class RunAlreadyInFlight(TrainingError):
    pass


class InvalidRunConfig(TrainingError):
    """A run's setting overrides name an unknown stage or setting, or a value of the wrong kind."""


class VersionStateError(TrainingError):
    pass


class NotEnoughData(TrainingError):
    pass
