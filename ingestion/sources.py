"""Where the data comes from: local files (`.csv`, `.csv.gz`, `.zip`, `.xlsx`) or URLs.

An URL is downloaded with httpx into `<data dir>/downloads/` first (to a `.part` file,
renamed when complete), then read like a local file. Rows come out with the line number
where they start in their file (the header is line 1), so bad rows can be reported
precisely even when a quoted field spans several lines.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO
from urllib.parse import urlparse
from xml.etree import ElementTree

import httpx

logger = logging.getLogger(__name__)

csv.field_size_limit(16 * 1024 * 1024)  # NHTSA summaries can be long

DOWNLOAD_TIMEOUT_S = 120.0
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class Row:
    """One record of a source file: its values by column name and where it starts."""

    line: int
    values: dict[str, str]
    member: str = ""  # the file inside a zip archive


class SourceError(Exception):
    """A source cannot be opened or downloaded (a usage problem, reported to the user)."""


def is_url(source: str) -> bool:
    """Tell whether `source` is an http(s) URL."""
    return urlparse(source).scheme in ("http", "https")


async def fetch(source: str, downloads: Path, http: httpx.AsyncClient) -> Path:
    """Return a local path for `source`, downloading it first when it is an URL.

    Args:
        source: A local path or an http(s) URL.
        downloads: Where downloads are kept.
        http: The shared client.

    Raises:
        SourceError: the file does not exist, or the download failed.
    """
    if not is_url(source):
        return local_file(source)
    target, partial = _download_paths(source, downloads)
    try:
        async with http.stream("GET", source, timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True) as response:
            if response.status_code != 200:
                raise SourceError(f"download failed: HTTP {response.status_code} for {source}")
            with partial.open("wb") as out:
                async for chunk in response.aiter_bytes(_CHUNK):
                    out.write(chunk)
    except httpx.HTTPError as e:
        raise SourceError(f"download failed: {type(e).__name__} for {source}") from e
    partial.replace(target)
    logger.info("downloaded %s to %s", source, target)
    return target


def local_file(source: str) -> Path:
    """Return the path of an existing local file.

    Raises:
        SourceError: there is no such file.
    """
    path = Path(source).expanduser()
    if not path.is_file():
        raise SourceError(f"no such file: {path}")
    return path


def _download_paths(url: str, downloads: Path) -> tuple[Path, Path]:
    name = Path(urlparse(url).path).name or "download"
    downloads.mkdir(parents=True, exist_ok=True)
    target = downloads / name
    return target, target.with_name(target.name + ".part")


def _csv_rows(stream: IO[str], member: str = "") -> Iterator[Row]:
    reader = csv.reader(stream)
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        return
    width = len(header)
    previous_end = reader.line_num
    for record in reader:
        start = previous_end + 1
        previous_end = reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        values = dict(zip(header, record, strict=False))
        if len(record) != width:
            values["__width__"] = str(len(record))
        yield Row(start, values, member)


def read_rows(path: Path) -> Iterator[Row]:
    """Yield the rows of a `.csv`, `.csv.gz`, `.zip` (every CSV inside) or `.xlsx` file.

    A row whose number of fields differs from the header's carries `__width__`, so the
    loader can reject it.
    """
    name = path.name.lower()
    if name.endswith(".xlsx"):
        yield from _xlsx_rows(path)
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.filename.lower().endswith((".csv", ".txt")):
                    with archive.open(info) as raw:
                        member = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
                        yield from _csv_rows(member, info.filename)
    elif name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as unzipped:
            yield from _csv_rows(unzipped)
    else:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as text:
            yield from _csv_rows(text)


def archive_date(path: Path) -> date | None:
    """Return the newest member date of a zip archive (NHTSA stamps its files), else None."""
    if not path.name.lower().endswith(".zip"):
        return None
    with zipfile.ZipFile(path) as archive:
        dates = [date(*info.date_time[:3]) for info in archive.infolist()]
    return max(dates) if dates else None


def file_date(path: Path) -> date:
    """Return the date a file was last modified (UTC), the fallback data date."""
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).date()


_DATE_IN_NAME = re.compile(r"(20\d\d)-(\d\d)-(\d\d)")


def date_in_name(name: str) -> date | None:
    """Return a `YYYY-MM-DD` date written in a file name (`19tstcar-2020-10-02.xlsx`), else None."""
    found = _DATE_IN_NAME.search(name)
    if not found:
        return None
    try:
        return date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return None


# --- a minimal .xlsx reader: EPA publishes the test car list only as workbooks -----------

_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
_CELL_REF = re.compile(r"([A-Z]+)(\d+)")


def _column_index(letters: str) -> int:
    index = 0
    for ch in letters:
        index = index * 26 + (ord(ch) - 64)
    return index - 1


def _xlsx_rows(path: Path) -> Iterator[Row]:
    """Yield the rows of the first worksheet of a workbook; line = spreadsheet row number."""
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            root = ElementTree.fromstring(archive.read("xl/sharedStrings.xml"))  # noqa: S314 - publisher file
            for item in root.iterfind("m:si", _NS):
                shared.append("".join(t.text or "" for t in item.iter(f"{{{_NS['m']}}}t")))
        sheets = sorted(n for n in names if n.startswith("xl/worksheets/sheet") and n.endswith(".xml"))
        if not sheets:
            raise SourceError(f"{path.name}: no worksheet")
        header: list[str] | None = None
        line = 0
        with archive.open(sheets[0]) as sheet:
            for _, element in ElementTree.iterparse(sheet):  # noqa: S314 - publisher file
                if element.tag != f"{{{_NS['m']}}}row":
                    continue
                # A row or cell may leave out its reference (`r`): it then follows the one before.
                line = int(element.get("r") or line + 1)
                cells: dict[int, str] = {}
                column = -1
                for cell in element.iterfind("m:c", _NS):
                    ref = _CELL_REF.match(cell.get("r", ""))
                    column = _column_index(ref[1]) if ref else column + 1
                    kind = cell.get("t")
                    if kind == "inlineStr":
                        text = "".join(t.text or "" for t in cell.iter(f"{{{_NS['m']}}}t"))
                    else:
                        value = cell.find("m:v", _NS)
                        text = value.text or "" if value is not None else ""
                        if kind == "s" and text:
                            text = shared[int(text)]
                    cells[column] = text.strip()
                element.clear()
                width = max(cells) + 1 if cells else 0
                values = [cells.get(i, "") for i in range(width)]
                if header is None:
                    header = values
                    continue
                if any(values):
                    yield Row(line, dict(zip(header, values, strict=False)), path.name)
