"""Turn bench results (bench/results/latest.json) into DESIGN §6 verdicts and Markdown.

python bench/report.py [bench/results/latest.json]   # rewrites latest.md next to it
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MET, NOT_MET, NA, INFO = "met", "**not met**", "not available", "reported"


def _get(d: dict | None, *path, default=None):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def _f(value, digits: int = 2, unit: str = "", sign: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:+,.{digits}f}" if sign else f"{value:,.{digits}f}"
    else:
        text = f"{value:+,}" if sign else f"{value:,}"
    return text + unit


# Issue #16: other requests to the keygate target's process, reported as their cost over pass-through.
VARIANTS = {
    "keygate_translated": "translated request (Anthropic Messages → Chat Completions) over pass-through",
    "keygate_failover": "failover route (priority 0 refuses connections, breaker open) over pass-through",
}


def _ratio(value) -> str:
    return "—" if value is None else f"{value:.0%}"


def _attempts(res: dict) -> str:
    """The failover route's x-keygate-attempts over the timed requests, e.g. "1 × 2,400, 2 × 1"."""
    seen = _get(res, "failover", "measured_attempts")
    if not seen:
        return "not counted"
    return ", ".join(f"{value} × {n:,}" for value, n in seen.items())


def _status(ok: bool | None) -> str:
    return NA if ok is None else (MET if ok else NOT_MET)


def evaluate(res: dict) -> list[dict]:
    """One row per DESIGN §6 figure: figure, target, measured (text), status, value."""
    rows: list[dict] = []

    def add(section, figure, target, measured, status, value=None):
        rows.append(
            {
                "section": section,
                "figure": figure,
                "target": target,
                "measured": measured,
                "status": status,
                "value": value,
            }
        )

    # --- Auth (bench/auth_bench.py) ---
    auth = res.get("auth") or {}
    why = auth.get("reason", "not run")
    if auth.get("available"):
        v = auth.get("cached_verify_us")
        add("auth", "cached verify", "≤ 10 µs", _f(v, 2, " µs"), _status(None if v is None else v <= 10), v)
        v, q = auth.get("garbage_key_us"), auth.get("garbage_key_db_queries")
        ok = None if v is None or q is None else (v <= 10 and q == 0)
        add(
            "auth",
            "garbage key rejected",
            "≤ 10 µs, 0 DB queries",
            f"{_f(v, 2, ' µs')}, {_f(q)} queries",
            _status(ok),
            v,
        )
        v = auth.get("argon2_computations_concurrent_first")
        n = auth.get("concurrent_first_requests", 1000)
        add(
            "auth",
            f"{n:,} concurrent first requests of a new key",
            "exactly 1 argon2",
            f"{_f(v)} argon2",
            _status(None if v is None else v == 1),
            v,
        )
        v = auth.get("cold_verify_ms")
        add("auth", "cold verify (argon2id, one key)", "reported", _f(v, 1, " ms"), INFO if v is not None else NA, v)
    else:
        for figure, target in (
            ("cached verify", "≤ 10 µs"),
            ("garbage key rejected", "≤ 10 µs, 0 DB queries"),
            ("1,000 concurrent first requests of a new key", "exactly 1 argon2"),
        ):
            add("auth", figure, target, f"not available: {why.splitlines()[0]}", NA)

    # --- Proxy, non-streaming ---
    lat = _get(res, "latency", "targets", default={})
    kg_note = _get(res, "targets", "keygate", "note") or "not measured"
    v = _get(lat, "keygate", "1", "added_p50_ms")
    add(
        "proxy",
        "added latency p50 at concurrency 1 (vs direct)",
        "≤ 0.5 ms",
        _f(v, 3, " ms") if v is not None else f"not available: {kg_note.splitlines()[0]}",
        _status(None if v is None else v <= 0.5),
        v,
    )
    tp = _get(res, "throughput", "targets", default={})
    kg, raw, ll = (_get(tp, n, "rps") for n in ("keygate", "raw", "litellm"))
    for other, rps, label, target, threshold, fmt in (
        ("raw", raw, "throughput vs raw-ASGI forwarder (same run)", "≥ 50 %", 0.5, "{:.1%}"),
        ("litellm", ll, "throughput vs LiteLLM proxy (same run)", "≥ 20×", 20, "{:.1f}×"),
    ):
        # The judged figure: the median of each round's own ratio (the two ran back to back);
        # older results have only the per-target medians, whose ratio is shown then.
        paired = _get(res, "throughput", f"keygate_vs_{other}")
        rounds = _get(res, "throughput", f"keygate_vs_{other}_rounds", default=[]) or []
        ratio = paired if paired is not None else (kg / rps if kg and rps else None)
        name = "raw" if other == "raw" else "LiteLLM"
        if ratio is None:
            shown = f"{name} not available" if kg else f"{name} {_f(rps, 0)} req/s; Keygate not available"
        elif paired is not None and len(rounds) == 1:
            shown = f"{fmt.format(ratio)}: one paired round, {_f(kg, 0)} / {_f(rps, 0)} req/s"
        elif paired is not None:
            spread = f"{fmt.format(min(rounds))}–{fmt.format(max(rounds))}"
            shown = (
                f"{fmt.format(ratio)}: median of {len(rounds)} paired rounds ({spread}); "
                f"medians {_f(kg, 0)} / {_f(rps, 0)} req/s"
            )
        else:
            shown = f"{_f(kg, 0)} / {_f(rps, 0)} req/s = {fmt.format(ratio)}"
        add("proxy", label, target, shown, _status(None if ratio is None else ratio >= threshold), ratio)

    # --- Translated and failover requests, over pass-through (issue #16) ---
    for name, figure in VARIANTS.items():
        over = _get(lat, name, "1", "over_keygate_p50_ms")
        row = _get(tp, name, default={}) or {}
        if over is None and not row.get("rps"):
            why = _get(res, "targets", name, "note") or "not measured"
            add("proxy", figure, "reported", f"not available: {why.splitlines()[0]}", NA)
            continue
        measured = f"p50 at c=1 {_f(over, 3, ' ms', sign=True)}, {_ratio(row.get('vs_keygate'))} of its req/s"
        if row.get("cpu_over_keygate_us") is not None:
            measured += f", server CPU {_f(row['cpu_over_keygate_us'], 0, ' µs', sign=True)}/request"
        if name == "keygate_failover":
            measured += f"; x-keygate-attempts {_attempts(res)}"
        add("proxy", figure, "reported", measured, INFO, over)

    # --- Streaming ---
    st = _get(res, "streaming", "targets", default={})
    kgs = st.get("sse_keygate", {})
    v = _get(kgs, "ttfb", "added_ttfb_p50_ms")
    add(
        "streaming",
        "first byte after the upstream's (TTFB added p50)",
        "≤ 1 ms",
        _f(v, 3, " ms") if v is not None else "Keygate not available",
        _status(None if v is None else v <= 1),
        v,
    )
    ch, chd = kgs.get("chunks"), _get(st, "sse_direct", "chunks")
    if ch and chd and ch["lag"].get("n"):
        added = ch["lag"]["p50"] - chd["lag"]["p50"]
        ok = added <= 1 and ch["lag"]["max"] < ch["delay_ms"] / 2 and ch["shape_passed_through"]
        add(
            "streaming",
            "chunks delivered as they arrive",
            f"lag added p50 ≤ 1 ms, max < {ch['delay_ms'] / 2:g} ms",
            f"lag p50 +{added:.3f} ms, p99 {ch['lag']['p99']:.2f} ms, max {ch['lag']['max']:.2f} ms",
            _status(ok),
            added,
        )
    else:
        add("streaming", "chunks delivered as they arrive", "no buffering", "Keygate not available", NA)
    cpu, cpu_raw = kgs.get("cpu"), _get(st, "sse_raw", "cpu")
    beyond = _get(res, "streaming", "cpu_beyond_floor_us_per_stream")
    if cpu and cpu_raw and beyond is not None:
        add(
            "streaming",
            f"server CPU per stream of {cpu['chunks']} chunks, beyond the floor's",
            "reported",
            f"{_f(beyond, 0, ' µs')} ({_f(cpu['us_per_stream'], 0)} vs {_f(cpu_raw['us_per_stream'], 0)} µs; "
            f"{_f(cpu['us_per_chunk'], 1)} vs {_f(cpu_raw['us_per_chunk'], 1)} µs a frame)",
            INFO,
            beyond,
        )
    op = kgs.get("open_streams")
    if op:
        ok = op["first_byte"] == op["streams"] and op["completed"] == op["streams"]
        add(
            "streaming",
            f"{op['streams']:,} concurrent open streams in one process",
            "all served; memory reported",
            f"{op['first_byte']:,} opened, {op['completed']:,} completed, {_f(op['kib_per_stream'], 1)} KiB/stream",
            _status(ok),
            op["kib_per_stream"],
        )
    else:
        add(
            "streaming",
            "concurrent open streams in one process",
            "1,000; memory per stream",
            "Keygate not available",
            NA,
        )

    # --- Revocation (measured by auth_bench.py when it can) ---
    v = auth.get("revocation_propagation_ms") if auth.get("available") else None
    if v is None:  # measured by run.py against PostgreSQL + Redis, two servers, CLI revoke
        v = ((res.get("scale_out") or {}).get("revocation") or {}).get("ms")
    add(
        "revocation",
        "revoked in one process → refused by another",
        "≤ 1 s",
        _f(v, 0, " ms") if v is not None else "not measured by bench/ yet",
        _status(None if v is None else v <= 1000),
        v,
    )

    # --- Scale-out ---
    so = res.get("scale_out") or {}
    if so.get("available"):
        w = {int(k): x.get("rps") for k, x in so["workers"].items()}
        busy = {int(k): x.get("machine_busy") for k, x in so["workers"].items()}
        cores = so.get("cores") or 0
        text = ", ".join(f"{k} w: {_f(v, 0)}" for k, v in sorted(w.items())) + " req/s"
        ok, status = None, NA
        if w.get(1) and w.get(2):
            ok = w[2] >= 1.2 * w[1]
            status = _status(ok)
            if busy.get(1) is not None:
                text += f"; all {cores} cores {busy[1]:.0%} busy with 1 worker"
            if not ok and busy.get(1) is not None and busy[1] >= 0.9:
                # No idle core for a second worker (wrk, nginx, PostgreSQL, Redis share them):
                # reported, not judged, as issue #16 asks.
                text += " (no idle core for a second worker: more workers cannot gain on this machine)"
                status = INFO
        if cores and cores <= 2 and w.get(4) is not None:
            text += f"; 4 workers on {cores} cores: shown, not judged"
        add(
            "scale-out",
            "throughput grows with workers (PostgreSQL + Redis)",
            "1 → 2 ≥ +20 % when a core is idle; 1, 2, 4 reported",
            text,
            status,
            w,
        )
    else:
        add(
            "scale-out",
            "throughput grows with workers (PostgreSQL + Redis)",
            "report 1, 2, 4",
            f"not available: {(so.get('reason') or 'not run').splitlines()[0]}",
            NA,
        )
    return rows


def markdown(res: dict) -> str:
    meta = res.get("meta", {})
    m = meta.get("machine", {})
    v = m.get("versions", {})
    out = ["# Keygate benchmark — latest run", ""]
    out.append(
        f"`python bench/run.py{' --quick' if meta.get('mode') == 'quick' else ''}` · mode **{meta.get('mode')}** · "
        f"{meta.get('finished_at')} · took {_f(meta.get('duration_s'), 0)} s"
    )
    out.append("")
    out.append(
        f"Machine: {m.get('cpu_model')}, {m.get('cores')} cores, {m.get('memory')}, {m.get('os')}, "
        f"kernel {m.get('kernel')}, Python {m.get('python')}; load average at start "
        f"{' '.join(m.get('loadavg_start') or [])}, at end {' '.join(m.get('loadavg_end') or [])}."
    )
    out.append("")
    out.append("Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + ".")
    out.append("")
    out.append(
        "Everything ran on 127.0.0.1 at once; rounds interleave the targets (rotated order), and every "
        "*added* figure is the median of per-round paired differences against the direct call. "
        "See bench/README.md for what each figure means."
    )
    out += ["", "## DESIGN §6 figures", "", "| area | figure | target | measured | status |", "|---|---|---|---|---|"]
    for r in res.get("figures") or evaluate(res):
        out.append(f"| {r['section']} | {r['figure']} | {r['target']} | {r['measured']} | {r['status']} |")

    lat = res.get("latency")
    if lat:
        out += [
            "",
            f"## Non-streaming latency (aiohttp client, {lat['rounds']} interleaved rounds, ms)",
            "",
            "| target | concurrency | requests | p50 | p90 | p99 | added p50 | added p99 | req/s (client) | failed |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        labels = {n: _get(res, "targets", n, "label", default=n) for n in lat["targets"]}
        for name, rows in lat["targets"].items():
            for c, row in rows.items():
                out.append(
                    f"| {labels[name]} | {c} | {_f(row.get('n'))} | {_f(row.get('p50'), 3)} | "
                    f"{_f(row.get('p90'), 3)} | {_f(row.get('p99'), 3)} | {_f(row.get('added_p50_ms'), 3)} | "
                    f"{_f(row.get('added_p99_ms'), 3)} | {_f(row.get('rps'), 0)} | {row.get('failed', 0)} |"
                )

    tp = res.get("throughput")
    if tp and tp.get("available"):
        t = tp["targets"]
        raw, ll, kg = (_get(t, n, "rps") for n in ("raw", "litellm", "keygate"))
        out += [
            "",
            f"## Throughput (wrk -t{tp['threads']} -c{tp['connections']} -d{tp['seconds']}s, "
            f"median of {tp['rounds']} interleaved rounds)",
            "",
            "| target | req/s | each round | p50 ms | p99 ms | errors | server CPU µs/request "
            "| vs raw forwarder | vs Keygate | vs LiteLLM |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, row in t.items():
            label = _get(res, "targets", name, "label", default=name)
            if "rps" not in row:
                out.append(f"| {label} | — | {row.get('error', '')} | | | | | | | |")
                continue
            rounds = ", ".join(f"{x:,.0f}" for x in row["rps_rounds"])
            vs_raw = f"{row['rps'] / raw:.0%}" if raw and name not in ("direct", "raw") else ""
            vs_kg = f"{row['rps'] / kg:.0%}" if kg and name.startswith("keygate_") else ""
            vs_ll = f"{row['rps'] / ll:.1f}×" if ll and name != "litellm" else ""
            out.append(
                f"| {label} | {row['rps']:,.0f} | {rounds} | {row['latency_p50_ms']:.2f} | "
                f"{row['latency_p99_ms']:.2f} | {row['errors']} | {_f(row.get('cpu_us_per_request'), 0)} | "
                f"{vs_raw} | {vs_kg} | {vs_ll} |"
            )
    elif tp:
        out += ["", "## Throughput", "", tp.get("note", "not available")]

    st = _get(res, "streaming", "targets")
    if st:
        out += [
            "",
            "## Streaming (SSE mock upstream)",
            "",
            "Time to first byte: short streams one after another on a warm connection.",
            "",
            "| target | TTFB p50 | TTFB p99 | added p50 | first-chunk lag p50 | failed | shape passed |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for row in st.values():
            tt = row.get("ttfb")
            if tt:
                out.append(
                    f"| {row['label']} | {_f(tt['ttfb'].get('p50'), 3)} ms | {_f(tt['ttfb'].get('p99'), 3)} ms | "
                    f"{_f(tt.get('added_ttfb_p50_ms'), 3)} | {_f(tt['first_chunk_lag'].get('p50'), 3)} ms | "
                    f"{tt['failed']} | {'yes' if tt['shape_passed_through'] else 'no'} |"
                )
        first = next((r.get("chunks") for r in st.values() if r.get("chunks")), None)
        if first:
            out += [
                "",
                f"Chunk timing: {first['streams']} streams of {first['chunks']} chunks sent "
                f"{first['delay_ms']} ms apart; lag = arrival at the client − upstream send time, "
                "gap error = |client gap − upstream gap|.",
                "",
                "| target | lag p50 | lag p99 | lag max | gap error p50 | gap error p99 |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for row in st.values():
                c = row.get("chunks")
                if c:
                    out.append(
                        f"| {row['label']} | {_f(c['lag'].get('p50'), 3)} ms | {_f(c['lag'].get('p99'), 3)} ms | "
                        f"{_f(c['lag'].get('max'), 3)} ms | {_f(c['gap_error'].get('p50'), 3)} ms | "
                        f"{_f(c['gap_error'].get('p99'), 3)} ms |"
                    )
        cpus = [(row["label"], row["cpu"]) for row in st.values() if row.get("cpu")]
        if cpus:
            c0 = cpus[0][1]
            out += [
                "",
                f"Server CPU (the proxy's process, all its threads) for {c0['streams']} concurrent streams of "
                f"{c0['chunks']} chunks {c0['delay_ms']} ms apart, the floor and Keygate back to back in each "
                f"of {c0['rounds']} rounds; per frame = per stream / {c0['chunks'] + 4} frames:",
                "",
                "| target | CPU per stream (median) | per frame | rounds | failed streams |",
                "|---|---:|---:|---|---:|",
            ]
            for label, c in cpus:
                rounds = ", ".join(f"{v:.0f}" for v in c["us_per_stream_rounds"])
                out.append(
                    f"| {label} | {_f(c['us_per_stream'], 0)} µs | {_f(c['us_per_chunk'], 1)} µs | {rounds} | "
                    f"{c['failed']} |"
                )
            beyond = _get(res, "streaming", "cpu_beyond_floor_us_per_stream")
            if beyond is not None:
                out += [
                    "",
                    f"Keygate beyond the floor: {_f(beyond, 0)} µs a stream (median of the rounds' differences).",
                ]
        opened = [(row["label"], row["open_streams"]) for row in st.values() if row.get("open_streams")]
        if opened:
            out += [
                "",
                "Concurrent open streams in one process (RSS of the proxy process, /proc VmRSS):",
                "",
                "| target | streams | got first byte | completed | all open after | RSS before | RSS with all open | per stream | upstream streams open |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for label, o in opened:
                out.append(
                    f"| {label} | {o['streams']:,} | {o['first_byte']:,} | {o['completed']:,} | "
                    f"{o['open_all_s']:.2f} s | {o['rss_before_kib'] / 1024:.1f} MiB | "
                    f"{o['rss_during_kib'] / 1024:.1f} MiB | {_f(o['kib_per_stream'], 1)} KiB | "
                    f"{_f(o.get('upstream_open_during'))} |"
                )
        disc = [(row["label"], row["disconnect"]) for row in st.values() if row.get("disconnect")]
        if disc:
            out += [
                "",
                "Client disconnects: streams open at the upstream while clients read, and 1 s after they hung up:",
                "",
                "| target | clients | upstream open during | upstream open 1 s after |",
                "|---|---:|---:|---:|",
            ]
            for label, d in disc:
                out.append(
                    f"| {label} | {d['streams']} | {_f(d['upstream_open_during'])} | "
                    f"{_f(d['upstream_open_1s_after_disconnect'])} |"
                )
        if _get(res, "streaming", "note"):
            out += ["", res["streaming"]["note"]]

    auth = res.get("auth") or {}
    out += ["", "## Auth (bench/auth_bench.py)", ""]
    if auth.get("available"):
        out += ["| figure | value |", "|---|---:|"]
        for key, value in auth.items():
            if key in ("available", "notes"):
                continue
            if isinstance(value, float):
                value = _f(value, 3)
            elif isinstance(value, (dict, list)):
                value = "`" + json.dumps(value) + "`"
            out.append(f"| {key} | {value} |")
        out += [f"- {n}" for n in auth.get("notes") or []]
    else:
        out.append("Not available: " + (auth.get("reason") or "not run").replace("\n", " "))

    so = res.get("scale_out") or {}
    out += ["", "## Scale-out (Keygate against PostgreSQL + Redis, wrk)", ""]
    if so.get("available"):
        out += ["| workers | req/s (median) | each round | errors |", "|---:|---:|---|---:|"]
        for w, row in so["workers"].items():
            rounds = ", ".join(f"{x:,.0f}" for x in row.get("rps_rounds") or [])
            out.append(
                f"| {w} | {_f(row.get('rps'), 0)} | {rounds or row.get('error') or ''} | {row.get('errors', '')} |"
            )
    else:
        out.append("Not available: " + (so.get("reason") or "not run").replace("\n", " "))

    over = _over_passthrough(res)
    if over:
        out += ["", "## Translated and failover requests over pass-through (issue #16)", ""]
        out += [
            "Same Keygate process, same key, same rounds as `Keygate`; paired per round at each concurrency.",
            "",
        ]
        out += [f"- {line}" for line in over]
    beyond = _beyond_floor(res)
    if beyond:
        out += ["", "## Keygate's own cost per request (issue #16)", ""]
        out += [f"- {line.strip()}" for line in beyond]
    unavailable = [(n, t) for n, t in (res.get("targets") or {}).items() if not t.get("available")]
    if unavailable or res.get("notes"):
        out += ["", "## Notes", ""]
        for name, t in unavailable:
            note = (t.get("note") or "").replace("\n", " ⏎ ")
            out.append(f"- `{name}` not available: {note}")
        for note in res.get("notes", []):
            out.append(f"- {note}")
    return "\n".join(out) + "\n"


def summary(res: dict) -> str:
    """A plain-text digest for the terminal."""
    lines = ["DESIGN §6 figures:"]
    for r in res.get("figures") or evaluate(res):
        lines.append(f"  [{r['status'].strip('*'):>13}] {r['figure']}: {r['measured']}  (target {r['target']})")
    lat = _get(res, "latency", "targets", default={})
    tp = _get(res, "throughput", "targets", default={})
    lines.append("Side by side (p50 at c=1, added p50 at c=1, wrk req/s, server CPU µs/request):")
    for name in ("direct", "raw", "keygate", *VARIANTS, "litellm"):
        row = _get(lat, name, "1")
        if row:
            lines.append(
                f"  {name:18} p50 {_f(row.get('p50'), 3)} ms   added {_f(row.get('added_p50_ms'), 3)} ms   "
                f"{_f(_get(tp, name, 'rps'), 0)} req/s   {_f(_get(tp, name, 'cpu_us_per_request'), 0)} µs"
            )
    lines += _over_passthrough(res)
    lines += _beyond_floor(res)
    lines.append(f"Took {_f(_get(res, 'meta', 'duration_s'), 0)} s.")
    return "\n".join(lines)


def _over_passthrough(res: dict) -> list[str]:
    """Issue #16: what a translated request and a failover route cost over pass-through."""
    lines = []
    lat = _get(res, "latency", "targets", default={})
    tp = _get(res, "throughput", "targets", default={})
    for name, short in (("keygate_translated", "translated"), ("keygate_failover", "failover")):
        if name not in lat and name not in tp:
            continue
        over = {c: row.get("over_keygate_p50_ms") for c, row in (lat.get(name) or {}).items()}
        row = tp.get(name) or {}
        text = (
            f"{short} − keygate: p50 "
            + ", ".join(f"c={c} {_f(v, 3, ' ms', sign=True)}" for c, v in over.items())
            + f"; req/s {short}/keygate {_ratio(row.get('vs_keygate'))}"
            f" ({_f(row.get('beyond_keygate_us'), 0, ' µs', sign=True)} per request at saturation,"
            f" server CPU {_f(row.get('cpu_over_keygate_us'), 0, ' µs', sign=True)})"
        )
        if name == "keygate_failover":
            first = _get(res, "failover", "first_request") or {}
            text += (
                f"; x-keygate-attempts in the timed requests: {_attempts(res)}"
                f" (first request: {first.get('attempts')} attempts, {_f(first.get('ms'), 1)} ms;"
                f" warm-up {' '.join(str(a) for a in _get(res, 'failover', 'warmup_attempts', default=[]))})"
            )
            after = _get(res, "failover", "attempts_after_throughput")
            if after:
                text += "; after the wrk rounds: " + ", ".join(f"{v} × {n}" for v, n in after.items())
        lines.append(text)
    return lines


def _beyond_floor(res: dict) -> list[str]:
    """Issue #16: Keygate's cost per request beyond the floor, and where it goes by stage."""
    lines = []
    tp = _get(res, "throughput", default={}) or {}
    targets = tp.get("targets") or {}
    if tp.get("beyond_floor_us") is not None:
        cpu = {n: _get(targets, n, "cpu_us_per_request") for n in ("keygate", "raw")}
        lines.append(
            f"Beyond the floor at saturation: 1/keygate_rps − 1/raw_rps = {_f(tp['beyond_floor_us'], 0)} µs"
            f" (target ≤ 180); server CPU per request keygate {_f(cpu['keygate'], 0)} µs,"
            f" raw {_f(cpu['raw'], 0)} µs, difference {_f(tp.get('beyond_floor_cpu_us'), 0)} µs"
        )
    st = res.get("stages") or {}
    if st.get("available"):
        parts = ", ".join(f"{name} {us:.1f}" for name, us in st["stages_us"].items())
        lines.append(
            f"Per stage (bench/stages.py, in-process, loop-thread CPU µs per request, timers included): {parts}"
        )
        lines.append(
            f"  in-process total {_f(st['keygate_loop_us'], 1)} µs, floor {_f(st['floor_loop_us'], 1)} µs,"
            f" Keygate's own {_f(st['keygate_own_us'], 1)} µs"
        )
    elif st:
        lines.append(f"Per stage: not available: {st.get('reason')}")
    return lines


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "latest.json")
    results = json.loads(path.read_text())
    results["figures"] = evaluate(results)
    path.with_suffix(".md").write_text(markdown(results))
    print(summary(results))
