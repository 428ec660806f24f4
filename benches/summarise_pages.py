#!/usr/bin/env python3
"""Summarise benches/pages.sh results (round, path, requests/s, p50 ms, p99 ms,
tab-separated): per path the median rate with min-max, median latencies, and
the median per-round ratio of the path's rate to the feed's.

Usage: summarise_pages.py RESULTS.tsv
"""
import statistics
import sys


def main():
    by = {}
    for line in open(sys.argv[1], encoding="utf-8"):
        rnd, path, rps, p50, p99 = line.rstrip("\n").split("\t")
        by.setdefault(path, {})[int(rnd)] = (float(rps), float(p50), float(p99))
    print("| path | requests/s (median, min–max) | p50 ms | p99 ms | ratio to feed (median, min–max) |")
    print("| --- | --- | --- | --- | --- |")
    for path in ("home", "item", "feed"):
        runs = by[path]
        rps = [v[0] for v in runs.values()]
        ratios = [runs[r][0] / by["feed"][r][0] for r in runs if r in by["feed"]]
        print(f"| {path} | {statistics.median(rps):,.0f} ({min(rps):,.0f}–{max(rps):,.0f}) "
              f"| {statistics.median(v[1] for v in runs.values()):.2f} "
              f"| {statistics.median(v[2] for v in runs.values()):.2f} "
              f"| {statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f}) |")


if __name__ == "__main__":
    main()
