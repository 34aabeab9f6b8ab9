"""The one error hierarchy of xmodal.

Every error a user can cause is an :class:`XmodalError`. The CLI prints ``str(err)`` as one line
and exits with ``err.exit_code``; the API maps ``err.http_status`` to a response. Anything else
that escapes is a bug.
"""

from __future__ import annotations


class XmodalError(Exception):
    """Base class: a problem the user can understand and fix."""

    exit_code = 2
    http_status = 400


class InvalidQueryError(XmodalError):
    """The query is empty, malformed, or cannot be encoded by this collection's model."""


class InvalidArgumentError(XmodalError):
    """A parameter is out of range or malformed (k, filters, options)."""


class MediaError(XmodalError):
    """A media file could not be read or decoded safely."""

    http_status = 422


class UnsupportedMediaError(MediaError):
    """The file's content is of a kind xmodal does not index."""

    http_status = 415


class MediaTooLargeError(MediaError):
    """The file exceeds a safety limit (bytes, pixels, audio duration)."""

    http_status = 413


class CollectionError(XmodalError):
    """The collection directory is missing, corrupt, locked, or inconsistent."""

    exit_code = 3
    http_status = 409


class CollectionBusyError(CollectionError):
    """Another writer (a process, or a request of the same server) holds the write lock."""


class CollectionNotFoundError(CollectionError):
    http_status = 404


class EncoderMismatchError(CollectionError):
    """The collection was built with another encoder than the one asked for."""


class ModelError(XmodalError):
    """A model could not be found, loaded, or does not fit the role asked of it."""

    exit_code = 4
    http_status = 400


class MissingDependencyError(ModelError):
    """An optional library is not installed; the message names the extra to install."""


class NotFoundError(XmodalError):
    """An item id that does not exist (or that the caller may not see)."""

    http_status = 404


class AuthError(XmodalError):
    """No credentials, or a key that is malformed, unknown or revoked."""

    http_status = 401


class ForbiddenError(XmodalError):
    """Valid credentials whose principal may not do this."""

    http_status = 403


class UnavailableError(XmodalError):
    """The server cannot take this now (it is shutting down); the same request may work later."""

    http_status = 503


class RangeNotSatisfiableError(XmodalError):
    """A Range request for bytes the file does not have (416)."""

    http_status = 416

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.headers = {"Content-Range": f"bytes */{size}"}
