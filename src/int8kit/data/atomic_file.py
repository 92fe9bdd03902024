"""Write a file under a temporary name and rename it at the end.

An interrupted run then never leaves a half-written file that looks like a complete data set.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO


class AtomicFile:
    """A binary file written as `.NAME.XXXX.part` beside the target; `commit()` renames it into place."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_path = self.path.parent / f".{self.path.name}.{secrets.token_hex(4)}.part"
        # os.open with 0o666 honours the umask (mkstemp would leave the result readable by its owner only).
        fd = os.open(self.tmp_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        self.file: BinaryIO = os.fdopen(fd, "w+b")

    def commit(self) -> Path:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.tmp_path.unlink(missing_ok=True)


def write_all(writer, images, labels) -> Path:
    """Append every (image, label) to a data-file writer, then close it; abort (no file left) on any error."""
    try:
        for image, label in zip(images, labels, strict=True):
            writer.append(image, int(label))
        return writer.close()
    except BaseException:
        writer.abort()
        raise
