"""The one error root of the ``cluster`` package.

Ray exceptions never leave ``cluster/``: they are translated here at the edge
(``raise ClusterUnavailable(...) from exc``) so that the gateway maps a single
family of errors to HTTP statuses.
"""

from __future__ import annotations


class ClusterError(Exception):
    """Root of every error raised by ``cluster``.

    ``retriable`` is True when the same call may succeed later unchanged
    (the cluster is starting, a node is being replaced).
    """

    retriable: bool = False

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        if retriable is not None:
            self.retriable = retriable


class ClusterUnavailable(ClusterError):
    """Ray is not initialised, cannot be reached, or did not answer in time."""

    retriable = True


class ClusterConfigurationError(ClusterError):
    """The Ray settings are contradictory or Ray refused them; retrying will not help."""

    retriable = False
