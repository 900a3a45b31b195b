"""The job's errors. The CLI turns each into one clear line and an exit status."""
from __future__ import annotations


class ImvjobError(Exception):
    """Base of the job's own errors."""

    exit_code = 1


class ConfigError(ImvjobError):
    """Bad configuration or input files: the job cannot start its work."""


class KubeError(ImvjobError):
    """The Kubernetes API refused or failed a request."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class Invalid(KubeError):
    """422: the server (CRD schema, admission) rejected the object."""


class Forbidden(KubeError):
    pass


class LeaseHeld(ImvjobError):
    """Another run holds the apply lease."""


class MailError(ImvjobError):
    """A message could not be sent. `fatal`: no later message can be sent either."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal
