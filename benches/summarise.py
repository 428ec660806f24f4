#!/usr/bin/env python3
"""Medians and ratios of interleaved benchmark rounds.

Reads a TSV of `case  round  tool  metric  value` rows (as benches/*.sh
write them) and prints, per case and metric, the median of each tool over
the rounds, and the median (min-max) of the per-round ratio NUM/DEN, so a
slow moment of a shared machine hits both sides of a ratio alike.

Usage: summarise.py RESULTS.tsv NUM DEN [METRIC...]
"""
import statistics
import sys
from collections import defaultdict


def main():
    path, num, den, *metrics = sys.argv[1:]
    rows = defaultdict(dict)  # (case, metric) -> {(round, tool): value}
    order = []
    for line in open(path, encoding="utf-8"):
        if not line.strip() or line.startswith("#"):
            continue
        case, rnd, tool, metric, value = line.rstrip("\n").split("\t")
        if metrics and metric not in metrics:
            continue
        key = (case, metric)
        if key not in rows:
            order.append(key)
        rows[key][(rnd, tool)] = float(value)
    print(f"| case | metric | {den} (median) | {num} (median) | ratio {num}/{den}: median (min-max) | rounds |")
    print("| --- | --- | ---: | ---: | --- | ---: |")
    for case, metric in order:
        cells = rows[(case, metric)]
        rounds = sorted({r for r, _ in cells}, key=int)
        a = [cells[(r, num)] for r in rounds if (r, num) in cells]
        b = [cells[(r, den)] for r in rounds if (r, den) in cells]
        ratios = [cells[(r, num)] / cells[(r, den)] for r in rounds
                  if (r, num) in cells and (r, den) in cells and cells[(r, den)]]
        fmt = (lambda v: f"{v:,.0f}") if max(a + b, default=0) >= 1000 else (lambda v: f"{v:.3f}")
        med = lambda xs: fmt(statistics.median(xs)) if xs else "-"
        ratio = (f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
                 if ratios else "-")
        print(f"| {case} | {metric} | {med(b)} | {med(a)} | {ratio} | {len(ratios)} |")


if __name__ == "__main__":
    main()
