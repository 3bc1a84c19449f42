"""What a rewrite, or a rename into place, changes about a file: a cheap test of whether to read it again."""

from __future__ import annotations

from pathlib import Path

__all__ = ["FileStamp", "file_stamp"]

FileStamp = tuple[int, int, int]


def file_stamp(path: Path) -> FileStamp:
    """Size, modification time and inode of ``path``; all -1 when it cannot be read."""
    try:
        found = path.stat()
    except OSError:
        return (-1, -1, -1)
    return (found.st_size, found.st_mtime_ns, found.st_ino)
