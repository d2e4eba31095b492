"""Results tables in Markdown."""

from __future__ import annotations

# Columns of the printed table: (metric key, header).
_COLUMNS = (("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("accel", "Accel"),
            ("accel_padded", "Accel (SmoothNet)"), ("mpjpe_hard1", "MPJPE hardest 1%"))
_PCK_COLUMNS = (("pck_0.05", "PCK@0.05"), ("pck_0.1", "PCK@0.1"), ("pck_0.2", "PCK@0.2"))


def _unit(set_name: str) -> str:
    return "px" if set_name.endswith("_2D") else "mm"


def _column_unit(key: str, unit: str) -> str:
    if key.startswith("pck"):
        return "%"
    return f"{unit}/frame^2" if key.startswith("accel") else unit


def format_table(set_name: str, rows: dict[str, dict]) -> str:
    """One Markdown table: a row per method, MPJPE / PA-MPJPE / Accel (+ PCK) columns."""
    columns = list(_COLUMNS)
    if any("mpvpe" in metrics for metrics in rows.values()):
        columns.append(("mpvpe", "MPVPE"))
    if any("pck_0.1" in metrics for metrics in rows.values()):
        columns += list(_PCK_COLUMNS)
    unit = _unit(set_name)
    header = "| method | " + " | ".join(
        f"{title} ({_column_unit(key, unit)})" for key, title in columns) + " |"
    lines = [f"**{set_name}** (test split; Accel in {unit}/frame^2)", "", header,
             "|---" * (len(columns) + 1) + "|"]
    for method, metrics in rows.items():
        cells = [f"{metrics[key]:.2f}" if key in metrics else "-" for key, _ in columns]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_results(results: dict[str, dict[str, dict]]) -> str:
    """Tables for every evaluated set, separated by blank lines."""
    return "\n\n".join(format_table(name, rows) for name, rows in results.items()) + "\n"


# Representations in the order of SmoothNet's README tables, with their section titles.
_SECTIONS = (("3D", "3D keypoints"), ("2D", "2D keypoints"), ("smpl", "SMPL"),
             ("rot", "6D joint rotations (through forward kinematics)"))


def _pair(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "-"
    return f"{before:.2f} → {after:.2f}"


def _paper_line(row: dict, accel_key: str, extra: list[tuple[str, str]]) -> str:
    """One row: ours (input -> refined) beside SmoothNet's published numbers."""
    inp, out, pub = row["input"], row["refined"], row.get("published")
    cells = [row["dataset"], row["estimator"], row["model"],
             _pair(inp["mpjpe"], out["mpjpe"]), _pair(inp[accel_key], out[accel_key])]
    cells += [_pair(inp.get(key), out.get(key)) for key, _ in extra]
    if pub is None:
        cells += ["-", "-", "-"]
    else:
        cells += [_pair(pub.mpjpe_in, pub.mpjpe_out), _pair(pub.accel_in, pub.accel_out),
                  pub.trained_on]
    return "| " + " | ".join(cells) + " |"


def format_paper_tables(rows: list[dict], accel_key: str = "accel_padded",
                        source: str = "") -> str:
    """SmoothNet README-style tables: input -> refined MPJPE and Accel, published beside.

    Args:
        rows: dicts with dataset, estimator, representation, model, input and refined metric
            dicts, and published (a :class:`lib.core.published.PublishedResult` or None).
        accel_key: which Accel to show (``accel_padded`` is SmoothNet's protocol).
        source: where the published numbers come from, quoted under the tables.
    """
    blocks = []
    for rep, title in _SECTIONS:
        chosen = [row for row in rows if row["representation"] == rep]
        if not chosen:
            continue
        unit = "px" if rep == "2D" else "mm"
        extra = [("mpvpe", "MPVPE")] if rep == "smpl" else []
        if any("pck_0.1" in row["input"] for row in chosen):
            extra += [("pck_0.05", "PCK@0.05 %"), ("pck_0.1", "PCK@0.1 %"),
                      ("pck_0.2", "PCK@0.2 %")]
        header = ["Dataset", "Estimator", "Model", f"MPJPE ({unit}) in → out",
                  f"Accel ({unit}/frame²) in → out", *(f"{name} in → out" for _, name in extra),
                  "SmoothNet MPJPE in → out", "SmoothNet Accel in → out", "SmoothNet trained on"]
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
                 "|---" * len(header) + "|"]
        lines += [_paper_line(row, accel_key, extra) for row in chosen]
        blocks.append("\n".join(lines))
    notes = [f"Accel column: `{accel_key}`" + (" (SmoothNet's protocol: zero-padded ends)."
                                               if accel_key == "accel_padded" else ".")]
    if source:
        notes.append(f"Published numbers: {source}.")
    return "\n\n".join(blocks) + "\n\n" + "\n".join(notes) + "\n"
