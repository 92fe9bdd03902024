"""Parse an ImageNet-style `val_list.txt` ("relative/path.jpg label" per line).

Errors name the file and the line, so a typo in line 31,337 of a 50,000-line list is found at once.
The list is UTF-8, with or without the byte order mark some Windows editors put first (a BOM kept in the
first path would make its image "not found"). Labels must fit the data files' int64.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from int8kit.errors import DataError

INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class LabelEntry:
    """One image of the list: its path relative to the data folder, its class and where it was read."""

    path: str
    label: int
    line: int


def parse_label_list(path: str | Path) -> list[LabelEntry]:
    """Read a label list. Blank lines and lines starting with '#' are skipped; paths may hold spaces."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: label list not found") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); save the list as UTF-8"
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read label list: {exc}") from None
    entries: list[LabelEntry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise DataError(f"{path}:{number}: expected 'relative/path label', got {raw!r}")
        name, label_text = parts
        try:
            label = int(label_text)
        except ValueError:
            raise DataError(f"{path}:{number}: label {label_text!r} is not an integer") from None
        if label < 0:
            raise DataError(f"{path}:{number}: label {label} is negative")
        if label > INT64_MAX:
            raise DataError(f"{path}:{number}: label {label_text} does not fit the data file's int64 (max {INT64_MAX})")
        entries.append(LabelEntry(path=name, label=label, line=number))
    if not entries:
        raise DataError(f"{path}: label list holds no images")
    return entries
