"""Results tables in Markdown."""

from __future__ import annotations

# Columns of the printed table: (metric key, header).
_COLUMNS = (("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("accel", "Accel"),
            ("accel_padded", "Accel (SmoothNet)"), ("mpjpe_hard1", "MPJPE hardest 1%"))
_PCK_COLUMNS = (("pck_0.05", "PCK@0.05"), ("pck_0.1", "PCK@0.1"), ("pck_0.2", "PCK@0.2"))


def _unit(set_name: str) -> str:
    return "px" if set_name.endswith("_2D") else "mm"


def format_table(set_name: str, rows: dict[str, dict]) -> str:
    """One Markdown table: a row per method, MPJPE / PA-MPJPE / Accel (+ PCK) columns."""
    columns = list(_COLUMNS)
    if any("pck_0.1" in metrics for metrics in rows.values()):
        columns += list(_PCK_COLUMNS)
    unit = _unit(set_name)
    header = "| method | " + " | ".join(
        f"{title} ({'%' if key.startswith('pck') else unit})" for key, title in columns) + " |"
    lines = [f"**{set_name}** (test split; Accel in {unit}/frame^2)", "", header,
             "|---" * (len(columns) + 1) + "|"]
    for method, metrics in rows.items():
        cells = [f"{metrics[key]:.2f}" if key in metrics else "-" for key, _ in columns]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_results(results: dict[str, dict[str, dict]]) -> str:
    """Tables for every evaluated set, separated by blank lines."""
    return "\n\n".join(format_table(name, rows) for name, rows in results.items()) + "\n"
