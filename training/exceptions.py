"""Errors the training services raise; views and commands turn them into messages."""


class TrainingError(Exception):
    """Base class for the training app's expected failures."""


class RunAlreadyInFlight(TrainingError):
    pass


class BrokerUnavailable(TrainingError):
    """The task broker (Redis) refused a task: nothing was queued; try again later."""


class InvalidRunConfig(TrainingError):
    """An unknown kind of run, or setting overrides naming an unknown stage or setting or a value that does not fit."""


class VersionStateError(TrainingError):
    pass


class ArtifactInvalid(VersionStateError):
    """A version whose artifact is missing, corrupt or unloadable: it must not become active."""


class NotEnoughData(TrainingError):
    pass


class GateLeak(TrainingError):
    """A model would be trained or judged on users it must never see: the gate would be fooled."""
