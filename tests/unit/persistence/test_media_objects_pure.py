"""The media object store's choices that need no store: which backend the
settings pick, and how obstore's errors are mapped."""

from __future__ import annotations

from pathlib import Path

import pytest
from obstore.exceptions import (
    GenericError,
    InvalidPathError,
    PermissionDeniedError,
    UnauthenticatedError,
)

from config.settings import MediaBackend, MediaSettings
from persistence.errors import (
    ConfigurationError,
    NotFound,
    PersistenceError,
    ServiceUnavailable,
)
from persistence.media.objects import object_store, translate_error


def test_the_backend_setting_picks_the_store(tmp_path: Path) -> None:
    local = object_store(MediaSettings(root=tmp_path / "objects"), tmp_path)
    assert local.backend is MediaBackend.LOCAL
    assert (tmp_path / "objects").is_dir()
    default = object_store(MediaSettings(), tmp_path / "data")
    assert default.backend is MediaBackend.LOCAL
    assert (tmp_path / "data" / "media").is_dir()

    s3 = object_store(MediaSettings(backend=MediaBackend.S3, root=tmp_path / "unused"), tmp_path)
    assert s3.backend is MediaBackend.S3
    # The S3 store is built without contacting anything, and leaves the root alone.
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize(
    ("exc", "mapped", "retriable"),
    [
        (FileNotFoundError("Object at location x not found"), NotFound, False),
        (
            GenericError("Generic S3 error: error sending request\n\nDebug source: ..."),
            ServiceUnavailable,
            True,
        ),
        (PermissionDeniedError("denied"), ConfigurationError, False),
        (UnauthenticatedError("bad signature"), ConfigurationError, False),
        (InvalidPathError("bad path"), PersistenceError, False),
    ],
)
def test_obstore_errors_map_to_store_errors(
    exc: BaseException, mapped: type[PersistenceError], retriable: bool
) -> None:
    error = translate_error(exc)
    assert type(error) is mapped
    assert error.retriable is retriable
    # The first line only: obstore's "Debug source" dump stays out of messages.
    assert "Debug source" not in str(error)
