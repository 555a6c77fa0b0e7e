"""The engine section's tables (tests/bench/engine_bench.py): the paced capacities, the targets
checked on them, and the full-speed runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine_bench import Section, Step

NAMES = {"engine": "acs engine", "aiohttp": "aiohttp loop", "httpx": "httpx.AsyncClient loop", "bytes": "acs engine, bytes only"}
MIB = 1024
PACED = (
    "Engine, paced: capacity with every frame in its own read (200 frames a stream, one frame per stream per tick)",
    "concurrency;client;capacity frames/s;client CPU µs/frame;frames/read;achieved ÷ offered;client CPU share;fell behind at;"
    "server busy / CPU;others' CPU;peak RSS;streams;engine ÷ client: capacity;: CPU/frame",
    "rlrrrrrrrrrlrr",
)
FULL = (
    "Engine, full speed: the server writes as fast as it can, round-robin (200 frames a stream)",
    "concurrency;client;streams;frames/s;client CPU µs/frame;client CPU share;frames/read;peak RSS;server CPU;engine ÷ client: frames/s;: CPU/frame",
    "rlrrrrrrrrr",
)


def _best(section: Section, level: int, kind: str) -> Step | None:
    return section.paced.get((level, kind), {}).get("best")


def _streams(final: dict) -> str:
    if "error" in final:
        return f"**FAILED**: {final['error'][:100]}"
    return f"{final['ok']:,} exact, {final['bad']:,} not"


def _heading(title: str, columns: str, align: str) -> list[str]:
    """A table's title and head; `columns` separated by `;`, `align` one letter each (r or l)."""
    names = columns.split(";")
    return ["", f"### {title}", "", "| " + " | ".join(names) + " |", "|" + "|".join("--:" if a == "r" else "---" for a in align) + "|"]


def paced_table(section: Section, kinds: list[str]) -> str:
    out = _heading(*PACED)
    for level in section.levels:
        eng = _best(section, level, "engine")
        for kind in kinds:
            result = section.paced.get((level, kind))
            if result is None:
                continue
            out.append(_paced_row(level, kind, result, eng))
    out += [
        "",
        f"Load average before {section.load_before}, after {section.load_after} (2 cores, shared: rerun if it was high).",
        (
            "Capacity: the highest offered rate (streams ÷ tick) at which the client kept up over a window of a few seconds"
            " (achieved ≥ 95% of offered and ≤ 1.2 frames per read), with that window's figures; `fell behind at` is the lowest"
            " offered rate at which it did not (the search stops when the two are within 12%). `≥` marks a capacity the server"
            " could not go beyond (server-limited: over 5% of its ticks given up or busy over 90% of the window). Server busy is"
            " the share of the window the server spent writing and handling events (it polls for the last 2 ms before each tick,"
            " so at ticks under 2 ms its CPU share is 100% by construction); others' CPU is what other processes on the machine used meanwhile, in cores."
        ),
    ]
    for (level, kind), found in section.capacities.items():
        if len(found) > 1:
            each = " / ".join("none" if c is None else f"{c:,.0f}" for c in found)
            out.append(f"- {NAMES[kind]} at {level:,} streams: {len(found)} searches, in turn with the other clients', capacities {each} (the best is in the table)")
    out += [f"- {n}" for n in section.notes]
    return "\n".join(out)


def _paced_row(level: int, kind: str, result: dict, eng: Step | None) -> str:
    if "error" in result:
        return f"| {level:,} | {NAMES[kind]} | **FAILED** | | | | | | | | | {result['error'][:120]} | | |"
    best: Step | None = result["best"]
    final = result["totals"]
    rss = f"{final['rss_kib'] / MIB:.0f} MiB" if "rss_kib" in final else ""
    failed = f"{result['failed_at']:,.0f}" if result["failed_at"] else "—"
    if best is None:
        return f"| {level:,} | {NAMES[kind]} | < {result['steps'][-1].offered:,.0f} | | | | | {failed} | | | {rss} | {_streams(final)} | | |"
    capped = any(s.server_limited for s in result["steps"]) and not result["failed_at"]
    ratios = ["", ""]
    if eng is not None and kind not in ("engine", "bytes"):
        ratios = [f"{eng.achieved / best.achieved:.1f}", f"{best.cpu_us / eng.cpu_us:.1f}"]
    cells = [
        f"{level:,}", NAMES[kind], ("≥ " if capped else "") + f"{best.achieved:,.0f}", f"{best.cpu_us:.1f}", f"{best.fpr:.2f}",
        f"{best.achieved / best.offered:.2f}", f"{best.client_share:.0%}", failed, f"{best.server_busy:.0%} / {best.server_cpu:.0%}",
        f"{best.foreign:.2f}", rss, _streams(final), *ratios,
    ]
    return "| " + " | ".join(cells) + " |"


def targets_table(section: Section) -> str:
    """The issue's engine targets, judged on the paced capacities at 1,000 streams."""
    eng, aio, hx = (_best(section, 1000, k) for k in ("engine", "aiohttp", "httpx"))
    rows: list[tuple[str, str, bool | None]] = []

    def ratio(peer: Step | None, need: int, name: str) -> None:
        if eng and peer:
            got = eng.achieved / peer.achieved
            rows.append((f"engine ≥ {need} × {name} (capacity at 1,000 streams)", f"{got:.2f} ×", got >= need))
        else:
            rows.append((f"engine ≥ {need} × {name} (capacity at 1,000 streams)", "not measured", None))

    ratio(aio, 3, "aiohttp loop")
    ratio(hx, 10, "httpx.AsyncClient loop")
    rows.append(("engine ≥ 20,000 frames/s at 1,000 streams", f"{eng.achieved:,.0f}" if eng else "not measured", eng.achieved >= 20_000 if eng else None))
    for regime, table in (("paced", section.paced), ("full speed", section.full)):
        got = table.get((10000, "engine"))
        if got is not None:
            final = got.get("totals", got)
            fine = "error" not in final and final["bad"] == 0 and final["ok"] > 0
            rows.append((f"10,000 concurrent streams without error ({regime})", _streams(final), fine))
    peaks = [r.get("totals", r).get("rss_kib") for r in (section.paced.get((1000, "engine")), section.full.get((1000, "engine"))) if r]
    peaks = [p for p in peaks if p]
    if peaks:
        rows.append(("engine peak RSS ≤ 150 MiB at 1,000 streams", f"{max(peaks) / MIB:.0f} MiB", max(peaks) <= 150 * MIB))
    out = _heading("Engine targets (paced capacities)", "target;measured;result", "lrl")
    for name, got, ok in rows:
        out.append(f"| {name} | {got} | {'not measured' if ok is None else 'PASS' if ok else '**FAIL**'} |")
    return "\n".join(out)


def full_speed_table(section: Section, kinds: list[str]) -> str:
    out = _heading(*FULL)
    for level in section.levels:
        eng = section.full.get((level, "engine"), {})
        for kind in kinds:
            r = section.full.get((level, kind))
            if r is not None:
                out.append(_full_row(level, kind, r, eng))
    out += [
        "",
        (
            "frames/read above 1 means the client fell behind the server and its reads held several frames, which lowers"
            " its cost per frame (an advantage to the slower clients): the paced table above is the target's regime."
            " Server CPU well under 100% means the server kept up."
        ),
    ]
    return "\n".join(out)


def _full_row(level: int, kind: str, r: dict, eng: dict) -> str:
    if "error" in r:
        return f"| {level:,} | {NAMES[kind]} | | **FAILED** | | | | | | | {r['error'][:120]} |"
    fps = r["frames"] / r["wall"] if r["wall"] else 0.0
    per = r["cpu"] / max(1, r["frames"])
    cells = [f"{level:,}", NAMES[kind], f"{r['streams']:,} ({r['bad']} not exact)", f"{fps:,.0f}", f"{1e6 * per:.1f}",
             f"{r['cpu'] / r['wall']:.0%}", f"{r['frames'] / max(1, r['reads']):.1f}", f"{r['rss_kib'] / MIB:.0f} MiB", f"{r['server_share']:.0%}"]
    ratios = ["", ""]
    if kind not in ("engine", "bytes") and "error" not in eng and eng.get("frames") and fps:
        ratios = [f"{eng['frames'] / eng['wall'] / fps:.1f}", f"{per / (eng['cpu'] / eng['frames']):.1f}"]
    return "| " + " | ".join(cells + ratios) + " |"
