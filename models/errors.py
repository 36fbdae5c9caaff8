"""Errors raised by models/: each says what the user can do about it."""


class ModelError(RuntimeError):
    """Base class for model training, export and serving errors."""


class ModelNotFoundError(ModelError):
    """No usable model folder: train one (``riskpulse train``) or set RISKPULSE_MODEL_DIR."""


class BackendUnavailableError(ModelError):
    """The requested backend cannot run on this host (missing library, GPU or artifact)."""


class ParityError(ModelError):
    """An exported model disagrees with the PyTorch model beyond the allowed tolerance."""


class InvalidTextError(ValueError):
    """An input is not scoreable text (not a string, empty or whitespace only)."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"item {index}: {reason}")
        self.index = index
        self.reason = reason
