#!/usr/bin/env python3
"""Scaling of many device actors: round time and memory, 10 -> 1,000,000 devices.

Runs `skyrun bench` (scenario `many`: every motor set in one group, then one
wait, one round; and `limit-actix-actors`: the same number of bare actix
actors) for each size, writes the figures to benchmarks/scaling.csv and
draws benchmarks/scaling.svg (no plotting library needed).

    cargo build --release && python3 scripts/scaling_plot.py
"""

import csv
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKYRUN = os.path.join(ROOT, "target", "release", "skyrun")
SIZES = [10, 100, 1_000, 10_000, 100_000, 1_000_000]


def bench(scenario, devices, trace="off"):
    out = subprocess.run(
        [SKYRUN, "bench", "--scenario", scenario, "--devices", str(devices),
         "--messages", str(devices), "--trace", trace, "--repeat", "3", "--json"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    if not os.path.exists(SKYRUN):
        sys.exit(f"{SKYRUN} not found: run `cargo build --release` first")
    rows = []
    for n in SIZES:
        many = bench("many", n)
        bare = bench("limit-actix-actors", n)
        rows.append({
            "devices": n,
            "round_s": many["seconds"],
            "sets_per_s": many["per_second"],
            "peak_rss_mb": many["peak_rss_bytes"] / 2**20,
            "bytes_per_device": many["peak_rss_bytes"] / n,
            "bare_peak_rss_mb": bare["peak_rss_bytes"] / 2**20,
            "bare_bytes_per_actor": bare["peak_rss_bytes"] / n,
        })
        print(json.dumps(rows[-1]), flush=True)
    os.makedirs(os.path.join(ROOT, "benchmarks"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "scaling.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(ROOT, "benchmarks", "scaling.svg"), "w") as f:
        f.write(svg(rows))


def svg(rows):
    W, H, L, R, T, B = 760, 420, 70, 70, 40, 60
    pw, ph = W - L - R, H - T - B
    xs = [math.log10(r["devices"]) for r in rows]
    x0, x1 = min(xs), max(xs)

    def X(v):
        return L + (math.log10(v) - x0) / (x1 - x0) * pw

    def axis(values):
        lo = math.floor(math.log10(min(values)))
        hi = math.ceil(math.log10(max(values)))
        return lo, max(hi, lo + 1)

    t_lo, t_hi = axis([r["round_s"] for r in rows])
    m_lo, m_hi = axis([r["peak_rss_mb"] for r in rows] + [r["bare_peak_rss_mb"] for r in rows])

    def Yt(v):
        return T + ph - (math.log10(v) - t_lo) / (t_hi - t_lo) * ph

    def Ym(v):
        return T + ph - (math.log10(v) - m_lo) / (m_hi - m_lo) * ph

    def line(points, color, dash=""):
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points)
        return f'<polyline fill="none" stroke="{color}" stroke-width="2" {dash} points="{d}"/>{dots}'

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W/2}" y="22" text-anchor="middle" font-size="15">skyrun: one group set+wait over N motor actors</text>',
             f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for r in rows:
        x = X(r["devices"])
        parts.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{T+ph}" stroke="#eee"/>')
        parts.append(f'<text x="{x:.1f}" y="{T+ph+18}" text-anchor="middle">{r["devices"]:,}</text>')
    parts.append(f'<text x="{L+pw/2}" y="{H-15}" text-anchor="middle">devices (log)</text>')
    for e in range(t_lo, t_hi + 1):
        y = Yt(10 ** e)
        parts.append(f'<text x="{L-8}" y="{y+4:.1f}" text-anchor="end" fill="#1f77b4">{10**e:g} s</text>')
    for e in range(m_lo, m_hi + 1):
        y = Ym(10 ** e)
        parts.append(f'<text x="{L+pw+8}" y="{y+4:.1f}" fill="#d62728">{10**e:g} MB</text>')
    parts.append(line([(X(r["devices"]), Yt(r["round_s"])) for r in rows], "#1f77b4"))
    parts.append(line([(X(r["devices"]), Ym(r["peak_rss_mb"])) for r in rows], "#d62728"))
    parts.append(line([(X(r["devices"]), Ym(r["bare_peak_rss_mb"])) for r in rows], "#d62728", 'stroke-dasharray="5,4"'))
    lx, ly = L + 12, T + 16
    legend = [("#1f77b4", "", "round time (left axis)"),
              ("#d62728", "", "peak RSS, skyrun motors (right axis)"),
              ("#d62728", 'stroke-dasharray="5,4"', "peak RSS, bare actix actors (right axis)")]
    for i, (c, dash, label) in enumerate(legend):
        y = ly + i * 18
        parts.append(f'<line x1="{lx}" y1="{y}" x2="{lx+26}" y2="{y}" stroke="{c}" stroke-width="2" {dash}/>')
        parts.append(f'<text x="{lx+32}" y="{y+4}">{label}</text>')
    parts.append("</svg>\n")
    return "\n".join(parts)


if __name__ == "__main__":
    main()
