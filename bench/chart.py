"""Draw bench/results/latest.png from latest.json (matplotlib, from bench/.venv-litellm).

bench/.venv-litellm/bin/python bench/chart.py [latest.json] [latest.png]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = {
    "direct": "#7f7f7f",
    "raw": "#1f77b4",
    "keygate": "#2ca02c",
    "keygate_translated": "#98df8a",
    "keygate_failover": "#bcbd22",
    "litellm": "#d62728",
}
LABELS = {
    "direct": "direct (nginx)",
    "raw": "raw ASGI floor",
    "keygate": "Keygate",
    "keygate_translated": "Keygate\ntranslated",
    "keygate_failover": "Keygate\nfailover",
    "litellm": "LiteLLM",
}
NAMES = ("direct", "raw", "keygate", "keygate_translated", "keygate_failover", "litellm")


def main(src: Path, dst: Path) -> None:
    res = json.loads(src.read_text())
    lat = (res.get("latency") or {}).get("targets", {})
    tp = (res.get("throughput") or {}).get("targets", {})
    so = res.get("scale_out") or {}
    panels = 3 if so.get("available") else 2
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.6))
    meta = res.get("meta", {})
    machine = meta.get("machine", {})
    fig.suptitle(
        f"Keygate bench ({meta.get('mode')}, {machine.get('cores')} cores, {machine.get('cpu_model')}) — "
        f"{meta.get('finished_at', '')}",
        fontsize=10,
    )

    ax = axes[0]
    for name in NAMES[1:]:
        rows = lat.get(name)
        if not rows:
            continue
        cs = sorted(int(c) for c in rows)
        p50 = [rows[str(c)].get("added_p50_ms") for c in cs]
        p99 = [rows[str(c)].get("added_p99_ms") for c in cs]
        pts = [(c, v) for c, v in zip(cs, p50, strict=True) if v is not None and v > 0]
        if pts:
            label = LABELS[name].replace("\n", " ")
            ax.plot(*zip(*pts, strict=True), "o-", color=COLORS[name], label=f"{label} p50")
        pts = [(c, v) for c, v in zip(cs, p99, strict=True) if v is not None and v > 0]
        if pts and not name.startswith("keygate_"):  # p50 only for the variants: fewer lines
            ax.plot(*zip(*pts, strict=True), "x--", color=COLORS[name], alpha=0.6, label=f"{label} p99")
    ax.axhline(0.5, color="#2ca02c", lw=0.8, ls=":", label="target: +0.5 ms p50 at c=1")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks([1, 16, 64], ["1", "16", "64"])
    ax.set_xlabel("concurrency")
    ax.set_ylabel("added latency over direct (ms, log)")
    ax.set_title("Added latency vs concurrency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)

    ax = axes[1]
    names = [n for n in NAMES if tp.get(n, {}).get("rps")]
    values = [tp[n]["rps"] for n in names]
    bars = ax.bar([LABELS[n] for n in names], values, color=[COLORS[n] for n in names])
    ax.tick_params(axis="x", labelsize=7)
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(f"{value:,.0f}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(bottom=10)
    ax.set_ylabel("requests/s (log)")
    conf = res.get("throughput") or {}
    ax.set_title(f"Throughput, 1 worker (wrk -c{conf.get('connections')} -d{conf.get('seconds')}s)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    if "keygate" not in names:
        ax.text(0.98, 0.95, "Keygate: not available", transform=ax.transAxes, ha="right", va="top", fontsize=8)

    if panels == 3:
        ax = axes[2]
        ws = sorted(so["workers"], key=int)
        values = [so["workers"][w].get("rps") or 0 for w in ws]
        bars = ax.bar([f"{w} worker{'s' if w != '1' else ''}" for w in ws], values, color="#2ca02c")
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(
                f"{value:,.0f}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=8
            )
        ax.set_ylabel("requests/s")
        ax.set_title("Keygate scale-out (PostgreSQL + Redis)")
        ax.grid(True, axis="y", alpha=0.3)

    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    here = Path(__file__).parent / "results"
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else here / "latest.json",
        Path(sys.argv[2]) if len(sys.argv) > 2 else here / "latest.png",
    )
