"""`audit.md`: an audit a person can read in the MLflow UI's artifact view."""
from __future__ import annotations

from ..tracking import names

WHAT = {"metric": "Numbers", "tamper": "Integrity of the record", "project": "Project",
        "config": "Configuration",
        "dataset": "Dataset digests", "environment": "Environment"}


def _cell(value) -> str:
    text = "—" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value))
    return text.replace("|", "\\|").replace("\n", " ")[:120]


def markdown(result: dict, tags: dict) -> str:
    lines = [f"# Audit of run `{result['run_id']}`", "",
             f"**Verdict: {result['verdict']}** (largest absolute difference "
             f"{_cell(result['max_abs_diff'])})", "",
             f"- kind: {tags.get(names.KIND, '?')}, variant: {tags.get(names.VARIANT, '?')}, "
             f"role: {tags.get(names.ROLE, '?')}",
             (f"- re-execution: run `{result['rerun_run_id']}`" if result.get("rerun_run_id") else
              "- re-execution: none (the record was refused: nothing it names was executed)")
             + f", recorded Project {_cell(tags.get(names.PROJECT_URI, '?'))} entry point "
             f"{_cell(tags.get(names.PROJECT_ENTRY_POINT, '?'))}",
             ""]
    if not result["differences"]:
        lines.append("Every number, the record's integrity, the configuration, the datasets and the "
                     "environment are the same.")
        return "\n".join(lines) + "\n"
    for what, title in WHAT.items():
        rows = [d for d in result["differences"] if d["what"] == what]
        if not rows:
            continue
        lines += [f"## {title}", "", "| key | original | re-execution | abs diff | within tolerance |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {_cell(d['key'])} | {_cell(d['original'])} | {_cell(d['rerun'])} | "
                  f"{_cell(d['abs_diff'])} | {'yes' if d['within_tolerance'] else '**no**'} |" for d in rows]
        lines.append("")
    return "\n".join(lines) + "\n"
