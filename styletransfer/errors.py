"""Errors meant for the user: the CLI prints them as one line, never as a traceback."""


class StyleTransferError(Exception):
    """A failure the user can fix; the message names what failed and the remedy."""

    exit_code = 1


class UsageError(StyleTransferError):
    """A bad flag value or combination (exit code 2, like click's own usage errors)."""

    exit_code = 2


class ImageError(StyleTransferError):
    """An image that cannot be read or written."""


class WeightsError(StyleTransferError):
    """Weights that cannot be found, downloaded, verified or loaded."""


class TrainingError(StyleTransferError):
    """Training that cannot start or has to stop (empty data set, non-finite loss)."""


class NonFiniteError(StyleTransferError):
    """An optimisation whose objective or gradient became NaN or infinite; ``image`` is the last
    iterate whose objective was finite, (3, H, W) in [0, 1] on the CPU."""

    def __init__(self, message: str, image=None) -> None:
        super().__init__(message)
        self.image = image
