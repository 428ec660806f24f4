#!/usr/bin/env python3
"""Write a seed file of N entries for benches/pages.sh: each entry's title
carries a date (so resources have their own dates, 2015-2024), six kinds of
title spread the entries over the built-in categories.

Usage: seed_library.py N OUT.txt
"""
import sys

MONTHS = ["January", "February", "March", "April", "May", "June", "July",
          "August", "September", "October", "November", "December"]
KINDS = ["Leaflet", "Report", "Strategy", "Case study", "Board papers", "News"]


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    with open(out, "w", encoding="utf-8") as f:
        f.write("Library\n\nThe whole library.\n\nLibrary\n\n")
        for i in range(n):
            kind = KINDS[i % len(KINDS)]
            date = f"{i % 28 + 1} {MONTHS[i % 12]} {2015 + i % 10}"
            f.write(f"{kind} number {i:05d} - {date}\n")
            f.write(f"What {kind.lower()} {i:05d} covers for health and social care "
                    "staff in Tower Hamlets, with who to contact and where to find more.\n\n\n")


if __name__ == "__main__":
    main()
