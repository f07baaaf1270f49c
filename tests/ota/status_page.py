#!/usr/bin/env python3
"""Checks for the campaign status page test (tests/ota/status.sh).

  png FILE W H [RRGGBB ...]   FILE is a PNG of W x H pixels (8-bit, any of
                              the colour types chromium writes) that is not
                              blank, and holds pixels of each colour given
  dom DOM.html STATUS.json    the page as chromium rendered it (--dump-dom)
                              shows STATUS's numbers and failures, and no
                              registry text became markup
  index DOM.html NAME...      the index links every campaign NAME

The PNG reader is the standard library's zlib plus the five PNG row
filters (PNG spec, ISO/IEC 15948 section 9), so no imaging package is
needed. Exit 0 when every check holds, else 1 with the failures on stderr.
"""
import json
import struct
import sys
import zlib
from html.parser import HTMLParser

fails = []


def check(cond, what):
    if not cond:
        fails.append(what)


def png_pixels(path):
    data = open(path, "rb").read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature")
    pos, idat, ihdr = 8, b"", None
    while pos + 8 <= len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if zlib.crc32(typ + body) != struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]:
            fails.append("bad CRC in chunk %r" % typ)
            return None
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat += body
        elif typ == b"IEND":
            break
        pos += 12 + n
    if not ihdr:
        fails.append("no IHDR")
        return None
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or interlace != 0 or ctype not in (0, 2, 4, 6):
        fails.append("unsupported PNG: depth %d type %d interlace %d" % (depth, ctype, interlace))
        return None
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def cmd_png(path, w, h, colours):
    r = png_pixels(path)
    if r is None:
        return
    pw, ph, bpp, rows = r
    check((pw, ph) == (w, h), "screenshot is %dx%d, want %dx%d" % (pw, ph, w, h))
    seen = {}
    for row in rows[::2]:
        for x in range(0, len(row), bpp * 2):
            px = row[x:x + 3] if bpp >= 3 else bytes([row[x]] * 3)
            seen[px] = seen.get(px, 0) + 1
    total = sum(seen.values())
    top = max(seen.values())
    check(len(seen) > 20, "screenshot is nearly blank (%d colours)" % len(seen))
    check(top < total * 0.97, "screenshot is nearly one colour (%d of %d)" % (top, total))
    for c in colours:
        want = bytes.fromhex(c)
        n = seen.get(want, 0)
        check(n >= 20, "colour #%s: %d pixels (the plot or the state bars are missing)" % (c, n))


class Dom(HTMLParser):
    """Collects text by element id / data-state, table rows, tags seen."""

    def __init__(self):
        super().__init__()
        self.stack, self.text, self.tags, self.rows, self.links = [], {}, {}, {}, []
        self.row = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for k, v in attrs:
            if k.startswith("on"):
                fails.append("an event handler attribute %s in the DOM" % k)
        key = a.get("id") or (a.get("data-state") and "state:" + a["data-state"])
        if tag == "table" and a.get("id"):
            self.rows[a["id"]] = []
            self.table = a["id"]
        if tag == "tr" and getattr(self, "table", None):
            self.row = []
            self.rows[self.table].append(self.row)
        if tag in ("td", "th") and self.row is not None:
            self.row.append("")
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag not in ("meta", "br", "img", "rect", "line", "polyline"):
            self.stack.append((tag, key))

    def handle_endtag(self, tag):
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break
        if tag == "table":
            self.table = None
            self.row = None

    def handle_data(self, data):
        for _, key in self.stack:
            if key:
                self.text[key] = self.text.get(key, "") + data
        if self.row is not None and self.row and any(t in ("td", "th") for t, _ in self.stack):
            self.row[-1] += data


def parse(path):
    d = Dom()
    d.feed(open(path, encoding="utf-8").read())
    check(d.tags.get("script", 0) == 0, "a <script> element in the DOM")
    check(d.tags.get("img", 0) == 0, "an <img> element in the DOM")
    return d


def cmd_dom(dom_path, status_path):
    st = json.load(open(status_path))
    d = parse(dom_path)
    for k in ("done", "failed", "running", "pending", "cancelled", "total"):
        got = d.text.get("state:" + k, "").strip()
        check(got == str(st[k]), "page shows %s = %r, --json says %d" % (k, got, st[k]))
    got = d.text.get("done-of-total", "").strip()
    check(got == "%d / %d" % (st["done"], st["total"]), "headline %r" % got)
    check(d.text.get("campaign-state", "").strip() == st["state"], "campaign state")
    fr = d.rows.get("failures", [])[1:]
    check(len(fr) == len(st["failures"]),
          "%d failure rows on the page, %d in --json" % (len(fr), len(st["failures"])))
    for row, f in zip(fr, st["failures"]):
        check(row[1] == f["device"], "failure device %r != %r" % (row[1], f["device"]))
        check(row[4] == f["reason"], "failure reason %r != %r" % (row[4], f["reason"]))
        check(row[3].strip() == str(f["attempts"]), "failure attempts")
    check(d.tags.get("svg", 0) >= 1 and d.tags.get("polyline", 0) >= 2, "no SVG plot")


def cmd_index(dom_path, names):
    d = parse(dom_path)
    rows = d.rows.get("campaigns", [])[1:]
    shown = [r[0] for r in rows]
    for n in names:
        check(n in shown, "index lacks campaign %r (has %r)" % (n, shown))


def main(argv):
    if len(argv) >= 4 and argv[1] == "png":
        cmd_png(argv[2], int(argv[3]), int(argv[4]), argv[5:])
    elif len(argv) == 4 and argv[1] == "dom":
        cmd_dom(argv[2], argv[3])
    elif len(argv) >= 3 and argv[1] == "index":
        cmd_index(argv[2], argv[3:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for f in fails:
        print("FAIL: " + f, file=sys.stderr)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
