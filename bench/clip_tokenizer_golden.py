"""Write the tokenizer golden file (strings + open_clip SimpleTokenizer ids) once, from the reference tokenizer.py.

Usage: pip download open_clip_torch==3.3.0 --no-deps -d /tmp/oc && unzip the wheel to /tmp/oc/ext, then
    python bench/clip_tokenizer_golden.py /tmp/oc/ext/open_clip/tokenizer.py
The reference module is loaded from its file alone (open_clip's package __init__ would pull torchvision)."""

from __future__ import annotations

import importlib.util
import json
import random
import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "plugins" / "textsearch" / "data" / "tokenizer_golden.json"
COCO = ROOT.parent / "shared" / "data" / "clip" / "coco"

RANGES = [(0x20, 0x7E), (0xA0, 0xFF), (0x100, 0x17F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF),
          (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2070, 0x209F),
          (0x2150, 0x218F), (0x2460, 0x24FF), (0x3000, 0x303F), (0x3040, 0x30FF), (0x4E00, 0x4FFF),
          (0xAC00, 0xAD00), (0xFF00, 0xFFEF), (0x1F300, 0x1F64F), (0x1F900, 0x1F9FF), (0x0300, 0x036F),
          (0x1D400, 0x1D4FF), (0x0, 0x1F)]
FIXED = ["", " ", "   \t\n ", "a", "A", ".", "!!!", "a photo of a dog.", "A PHOTO OF A DOG", "I'll", "it's", "DON'T",
         "we're they've i'm you'd", "'s't", "3.14159", "1,000,000", "12345678901234567890", "<start_of_text>",
         "<end_of_text>", "hello <end_of_text> world", "&amp;", "&amp;lt;b&amp;gt;", "&lt;3", "caf\u00c3\u00a9",
         "\u00e2\u20ac\u0153quoted\u00e2\u20ac\x9d", "na\u00efve r\u00e9sum\u00e9", "stra\u00dfe", "\u0130stanbul",
         "\ufb01sh \ufb02ow", "\u2163 \u216b \u00bd \u00b2\u00b3", "\uff21\uff22\uff23 \uff11\uff12\uff13",
         "\U0001f600\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u200b\u200c\u200d",
         "\u202eabc\u202c", "e\u0301 vs \u00e9", "\u4e00\u4e8c\u4e09 \u6f22\u5b57", "\ud55c\uad6d\uc5b4",
         "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u0939\u093f\u0928\u094d\u0926\u0940", "\x00\x01\x7f",
         "tab\tsep\tvalues", "line\r\nbreaks", "url https://example.com/a?b=c&d=e#f", "email a.b@c.de",
         "C++ / C# / F#", "$100 \u20ac50 \u00a330", "100%", "#hashtag @mention", "snake_case and kebab-case",
         "...", "\u2026", "--", "\u2014", "a" * 300, "ab " * 200, "x" * 5000, "\U0001f600" * 100]


def load_reference(path: str):
    spec = importlib.util.spec_from_file_location("ref_clip_tokenizer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.SimpleTokenizer()


def random_text(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        lo, hi = rng.choice(RANGES)
        c = rng.randint(lo, hi)
        out.append(chr(c))
        if rng.random() < 0.15:
            out.append(" ")
    return "".join(out)


def strings() -> list[str]:
    rng = random.Random(20261203)
    caps = [r["caption"] for name in ("captions_train.json", "captions_val.json")
            for r in json.loads((COCO / name).read_text())]
    rng.shuffle(caps)
    out = list(FIXED)
    out += caps[:400]
    out += [c.upper() for c in caps[400:450]]
    out += ["  " + c.replace(" ", "   ") + " \n" for c in caps[450:480]]
    out += [c.replace("and", "&amp;") for c in caps[480:500]]
    out += [" ".join(caps[i:i + rng.randint(4, 12)]) for i in range(500, 600)]  # longer than 77 tokens
    out += ["".join(rng.choice(string.punctuation + " ") for _ in range(rng.randint(1, 60))) for _ in range(120)]
    out += [random_text(rng, rng.randint(1, 40)) for _ in range(350)]
    out += [random_text(rng, rng.randint(100, 400)) for _ in range(30)]
    out += [" ".join(str(rng.randint(0, 10 ** rng.randint(1, 12))) for _ in range(rng.randint(1, 6)))
            for _ in range(40)]
    return out


def main(ref_path: str) -> None:
    tok = load_reference(ref_path)
    rows = []
    for s in strings():
        ids = tok(s)[0].tolist()
        while ids and ids[-1] == 0:
            ids.pop()
        rows.append({"text": s, "ids": ids})
    OUT.write_text(json.dumps({"reference": "open_clip_torch 3.3.0 open_clip/tokenizer.py SimpleTokenizer()",
                               "context": 77, "rows": rows}, ensure_ascii=True, indent=0) + "\n")
    print(f"{len(rows)} strings → {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/oc/ext/open_clip/tokenizer.py")
