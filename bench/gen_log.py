#!/usr/bin/env python3
"""Writes a deterministic combined-format access log: LINES lines over 4 hours, 10,000 clients, an outage."""
import random
import sys

lines = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
out = sys.stdout
rng = random.Random(42)
agents = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "curl/8.5.0",
]
paths = ["/", "/index.php", "/cart", "/shop/item/42", "/static/app.js", "/api/stock?id=7"]
months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
span = 4 * 3600
buf = []
for i in range(lines):
    t = 12 * 3600 + i * span // lines
    hh, mm, ss = t // 3600, t // 60 % 60, t % 60
    client = rng.randrange(10_000)
    outage = 13 * 3600 <= t < 13 * 3600 + 1800
    status = 500 if outage and rng.random() < 0.9 else rng.choice((200, 200, 200, 200, 304, 404))
    buf.append(
        f'10.{client // 65536}.{client // 256 % 256}.{client % 256} - - [25/Nov/2026:{hh:02}:{mm:02}:{ss:02} +0000] '
        f'"GET {paths[i % len(paths)]} HTTP/1.1" {status} {rng.randrange(100, 20000)} '
        f'"https://shop.example/" "{agents[i % 3]}"\n'
    )
    if len(buf) >= 10_000:
        out.write("".join(buf))
        buf.clear()
out.write("".join(buf))
