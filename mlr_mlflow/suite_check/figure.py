"""`suite_check.png`: per-task signal to noise and split-half, and full-training B-WR of the panel
on seed set A against set B (a ranking that repeats lies along the diagonal)."""
from __future__ import annotations

import io
import math
from collections import Counter

COLOURS = {"degenerate": "#d62728", "relu_like": "#1f77b4", "standard": "#2ca02c"}
LABELS = {"degenerate": "degenerate", "relu_like": "ReLU-like", "standard": "standard"}


def _num(value) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def render(out: dict, kind: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    tasks = list(out["tasks"])
    fig, (ax_snr, ax_split, ax_scatter) = plt.subplots(1, 3, figsize=(15, 4.6),
                                                       gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    xs = range(len(tasks))
    width = 0.38
    for ax, key, title in ((ax_snr, "snr", "signal to noise (log scale)"),
                           (ax_split, "split_half", "split-half repeatability (Spearman A vs B)")):
        full = [_num(out["tasks"][t][key]) for t in tasks]
        cheap = [_num(out["tasks_one_pass"][t][key]) for t in tasks]
        ax.bar([x - width / 2 for x in xs], full, width, label="full", color="#1f77b4")
        ax.bar([x + width / 2 for x in xs], cheap, width, label="one-pass", color="#ff7f0e")
        for x, values in ((-width / 2, full), (width / 2, cheap)):
            for i, v in enumerate(values):
                if not math.isfinite(v):
                    ax.text(i + x, 0.0 if key == "split_half" else 1.0, "n/a", ha="center", va="bottom",
                            fontsize=7, color="grey")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(tasks, rotation=35, ha="right")
        ax.set_title(title)
        ax.legend(fontsize=8)
    ax_snr.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax_snr.yaxis.set_major_formatter(plain)
    ax_snr.yaxis.set_minor_formatter(FuncFormatter(  # 2 and 5 of each decade, not every minor tick
        lambda v, _: f"{v:g}" if v > 0 and round(v / 10 ** math.floor(math.log10(v))) in (2, 5) else ""))
    ax_snr.tick_params(axis="y", which="minor", labelsize=7)
    ax_snr.axhline(1.0, color="grey", lw=1, ls="--", label="1 = seed noise")
    ax_snr.legend(fontsize=8)
    ax_split.set_ylim(-1, 1.15)
    ax_split.axhline(0.0, color="grey", lw=1)
    for i, t in enumerate(tasks):  # saturation (full) above each task: why a task cannot split the panel
        sat = _num(out["tasks"][t]["saturation"])
        if math.isfinite(sat):
            ax_split.text(i, 1.03, f"sat. {sat * 100:.0f} %", ha="center", fontsize=7,
                          color="#d62728" if sat >= 0.5 else "black")
    members = out["members"]
    for group, colour in COLOURS.items():
        pts = [(m["full"]["a"]["b_wr"], m["full"]["b"]["b_wr"]) for m in members.values() if m["group"] == group]
        pts = [(a, b) for a, b in pts if a is not None and b is not None]
        if pts:  # equal win rates are common: a point's area counts the members on it
            counts = Counter(pts)
            ax_scatter.scatter([p[0] for p in counts], [p[1] for p in counts], s=[30 * c for c in counts.values()],
                               color=colour, label=f"{LABELS[group]} ({len(pts)})", alpha=0.6)
    ax_scatter.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    ax_scatter.set_xlim(-0.03, 1.03)
    ax_scatter.set_ylim(-0.03, 1.03)
    ax_scatter.set_xlabel(f"full B-WR, seeds {out['seeds']['a']}")
    ax_scatter.set_ylabel(f"full B-WR, seeds {out['seeds']['b']}")
    ceiling = out["full_noise_ceiling"]
    ax_scatter.set_title(f"panel B-WR, full training, set A vs set B\nSpearman {_num(ceiling):.2f} "
                         "(non-degenerate; area = members)", fontsize=10)
    ax_scatter.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"suite check · {kind} · {len(tasks)} tasks · {len(members)} panel members")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
