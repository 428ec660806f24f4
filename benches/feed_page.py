#!/usr/bin/env python3
"""Write one single-page library whose feed is about 200 KB at 100 items.

The generator's summaries are one paragraph of 100-800 characters, which
gives a 100-item RSS feed of about 90 KB; real library entries often carry
several paragraphs. This keeps the generator's first paragraph and adds
three more from its own phrase grammar (fresh text, so gzip ratios stay
realistic), then renders the page with the generator's chrome and markup.

Usage: feed_page.py GEN_LIBRARY_PY ENTRIES_JSON OUT_HTML N
"""
import html
import importlib.util
import json
import random
import sys


def main():
    gen_path, entries_path, out_path, n = sys.argv[1:5]
    spec = importlib.util.spec_from_file_location("gen_library", gen_path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    entries = json.load(open(entries_path, encoding="utf-8"))[: int(n)]
    rng = random.Random(3)
    esc = html.escape

    def render_entry(e):
        day = gen.dt.date.fromisoformat(e["date"])
        paras = [e["summary"]] + [gen.make_summary(rng, e["category"], day) for _ in range(3)]
        body = "".join(f"<p>{esc(p, quote=False)}</p>" for p in paras)
        return (
            f'<article class="resource" data-category="{esc(e["category"])}">'
            f'<h3 class="resource__title"><a href="{esc(e["link"])}">{esc(e["title"], quote=False)}</a></h3>'
            f'<time class="resource__date" datetime="{e["date"]}">{gen.human_date(day)}</time>'
            f'<div class="resource__summary">{body}</div>'
            f'<a class="resource__download" href="{esc(e["download"])}">Download</a>'
            "</article>"
        )

    gen.render_entry = render_entry
    page = gen.render_page(entries, "", "Resource Library (all)",
                           f"Showing all {len(entries)} resources", "")
    with open(out_path, "w", encoding="utf-8") as fh:
        fh.write(page)


if __name__ == "__main__":
    main()
