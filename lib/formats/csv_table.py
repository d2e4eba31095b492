"""CSV tables: one frame per row, J x D pose columns, an optional header and frame/time columns."""

from __future__ import annotations

import csv
import io

import numpy as np

from lib.formats.base import FormatError, PoseFile, single_sequence
from lib.utils.io import save_text

# Header names (lower case) of columns that are copied through unchanged, never refined.
PASSTHROUGH_COLUMNS = ("frame", "frame_id", "index", "time", "timestamp", "t")
_AXIS_NAMES = "xyz"
_NUMBER_FORMAT = "{:.10g}"


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_rows(path: str) -> tuple[list[list[str]], list[int], str]:
    """Non-empty rows, the file line number of each (1-based), and the delimiter."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as err:
        raise FormatError(f"{path}: cannot read the CSV file ({err})") from None
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = next((d for d in (",", "\t", ";") if d in first), ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows, lines = [], []
    for row in reader:
        if row:
            rows.append(row)
            lines.append(reader.line_num)
    if not rows:
        raise FormatError(f"{path}: the CSV file is empty")
    return rows, lines, delimiter


def _check_widths(rows: list[list[str]], lines: list[int], width: int, path: str,
                  first: str) -> None:
    """Every row needs exactly ``width`` cells, like the first; else no cell is dropped."""
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise FormatError(f"{path}, line {line}: {len(row)} cells but the {first} has "
                              f"{width}; every row needs the same columns (a missing or extra "
                              "delimiter?)")


def _header_dims(names: list[str]) -> int | None:
    """D when the pose column names end in x, y(, z) in a repeating pattern, else None."""
    suffixes = "".join(name.strip()[-1:].lower() for name in names)
    for dims in (3, 2):
        if len(names) % dims == 0 and suffixes == _AXIS_NAMES[:dims] * (len(names) // dims):
            return dims
    return None


def _joint_names(names: list[str], dims: int) -> tuple[str, ...]:
    return tuple(name.strip()[:-1].rstrip("_.:- ") for name in names[::dims])


def _pose_values(rows: list[list[str]], columns: list[int], path: str,
                 lines: list[int]) -> np.ndarray:
    """The numeric pose cells (rows of equal width). Shape: returns (T, len(columns)) float64."""
    values = np.empty((len(rows), len(columns)))
    for r, row in enumerate(rows):
        for c, column in enumerate(columns):
            try:
                values[r, c] = float(row[column])
            except ValueError:
                raise FormatError(f"{path}, line {lines[r]}, column {column + 1}: "
                                  f"{row[column]!r} is not a number; fill or interpolate missing "
                                  "values first") from None
    return values


def read_csv(path: str, coord_dim: int | None = None) -> PoseFile:
    """One sequence from a CSV table.

    A first row with any non-numeric cell is a header. Columns named frame, time, timestamp,
    index, frame_id or t are copied through. D comes from the header (names ending in x, y, z
    in turn), else from ``coord_dim``, else 3.

    Shape:
        the PoseFile holds one sequence (T, J, D).
    """
    rows, lines, delimiter = _read_rows(path)
    header = rows[0] if not all(_is_number(cell) for cell in rows[0]) else None
    body, body_lines = (rows[1:], lines[1:]) if header else (rows, lines)
    if not body:
        raise FormatError(f"{path}: a header but no frames")
    names = header or [""] * len(body[0])
    _check_widths(body, body_lines, len(names), path, "header" if header else "first row")
    passthrough = [c for c, name in enumerate(names)
                   if name.strip().lower() in PASSTHROUGH_COLUMNS]
    columns = [c for c in range(len(names)) if c not in passthrough]
    pose_names = [names[c] for c in columns]
    dims = (_header_dims(pose_names) if header else None) or coord_dim or 3
    if not columns or len(columns) % dims:
        raise FormatError(f"{path}: {len(columns)} pose columns do not split into joints of "
                          f"{dims} coordinates; pass the coordinates per joint (--coord-dim) or "
                          "name the columns <joint>_x, <joint>_y(, <joint>_z)")
    values = _pose_values(body, columns, path, body_lines)
    joint_names = _joint_names(pose_names, dims) if header and _header_dims(pose_names) else None
    meta = {"header": header, "delimiter": delimiter, "columns": columns, "width": len(names),
            "passthrough": {c: [row[c] for row in body] for c in passthrough}}
    return PoseFile(path, "csv", [values.reshape(len(body), -1, dims)], joint_names=joint_names,
                    meta=meta)


def _generic_layout(pose_file: PoseFile, sequence: np.ndarray) -> dict:
    """Header and columns for sequences that did not come from a CSV file."""
    frames, joints, dims = sequence.shape
    names = pose_file.joint_names or tuple(f"joint{j}" for j in range(joints))
    header = [f"{name}_{axis}" for name in names for axis in _AXIS_NAMES[:dims]]
    passthrough = {}
    if pose_file.fps:
        header = ["time", *header]
        passthrough[0] = [_NUMBER_FORMAT.format(f / pose_file.fps) for f in range(frames)]
    start = len(passthrough)
    return {"header": header, "delimiter": ",", "width": len(header), "passthrough": passthrough,
            "columns": list(range(start, len(header)))}


def write_csv(path: str, pose_file: PoseFile) -> None:
    """Write the sequence with the source's header, delimiter and frame/time columns."""
    sequence = single_sequence(pose_file, path)
    layout = pose_file.meta if pose_file.format == "csv" else _generic_layout(pose_file, sequence)
    flat = np.asarray(sequence).reshape(len(sequence), -1)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=layout["delimiter"], lineterminator="\n")
    if layout["header"]:
        writer.writerow(layout["header"])
    for frame, values in enumerate(flat):
        row = [""] * layout["width"]
        for column, cells in layout["passthrough"].items():
            row[column] = cells[frame]
        for column, value in zip(layout["columns"], values):
            row[column] = _NUMBER_FORMAT.format(value)
        writer.writerow(row)
    save_text(path, buffer.getvalue())
