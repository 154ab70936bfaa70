#!/usr/bin/env python3
"""`duka catalog` lines up its columns on UTF-8 names (issue 10): printf padded by bytes, so
"Café Touba" came out one column short and "Sukuma wiki 🌿" three. Every line's price column
must start at the same display column (as a terminal counts them: wide characters two,
combining marks none), a name too long for its column is cut with "…", and --json keeps the
whole name.
"""

import os
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Suite, catalog, check, check_eq, free_port, run, setup_business  # noqa: E402

suite = Suite("catalog_text")

NAMES = ["Mandazi ya nazi \u2014 6 pcs", "Caf\u00e9 Touba", "Cafe\u0301 Touba (decomposed)",
         "Sukuma wiki \U0001F33F", "Jogoo Maize Flour 2kg",
         "Pembe Home Baking Flour 2kg \u2014 family pack of six"]


def columns(text):
    """Display columns of text as a terminal shows them."""
    w = 0
    for c in text:
        if unicodedata.combining(c) or c in "\u200b\u200c\u200d\ufe0f":
            continue
        w += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return w


@suite.test
def catalog_columns_line_up_on_utf8_names(ctx):
    products = [("P%02d" % i, n, "%d.00" % (10 + i), "B", 10, "Misc") for i, n in enumerate(NAMES)]
    biz = setup_business(ctx.tmp, free_port(), products=products)
    db = biz.tills["T01"]
    rc, out, err = run(["catalog", "--db", db])
    check_eq(rc, 0, "duka catalog exit code (stderr %r)" % err)
    lines = [l for l in out.split("\n") if l.startswith("P")]
    check_eq(len(lines), len(NAMES), "catalog lines: %r" % out)
    at = {l.split()[0]: columns(l[:l.index(" KES ")]) for l in lines}
    check(len(set(at.values())) == 1, "the price column starts at different display columns: "
          "%r\n%s" % (at, out))
    long_line = [l for l in lines if l.startswith("P05")][0]
    check("\u2026" in long_line and "family pack of six" not in long_line,
          "a name longer than its column is cut with an ellipsis: %r" % long_line)
    full = {p["sku"]: p["name"] for p in catalog(db)}
    check_eq(full["P05"], NAMES[5], "--json keeps the whole name")
    check_eq(full["P03"], NAMES[3], "--json keeps the emoji")


if __name__ == "__main__":
    suite.main()
