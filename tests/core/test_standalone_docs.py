"""The repository stands alone: no comment or docstring in the app or its plug-ins cites a document, section or issue
that is not in the repository, and every `docs/...` pointer they (or the README) make names a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = [d for d in ("app", "plugins", "vitascope", "vitascope_plugins") if (ROOT / d).is_dir()]
SUFFIXES = {".py", ".toml", ".txt", ".spec", ".md", ".cfg", ".ini"}

# A citation of a document outside the repository: a section sign with a number ("METHODS §4", "(§6)"), a note
# named in capitals ("DESIGN", "STACK.md") or an issue number; in code, also the sibling ../shared folder (the
# installed app never reads it; a recipe that reproduces a shipped model from real data may name where it is).
CITATIONS = [
    (re.compile(r"§\s*\d"), "section citation"),
    (re.compile(r"\b(?:METHODS|DESIGN|STACK|HOLOGRAPHY|ECG|RETRIEVAL)(?:\.md)?\s*§"), "note section"),
    (re.compile(r"\b(?:DESIGN|STACK|HOLOGRAPHY|ECG|RETRIEVAL|METHODS)\.md\b"), "external note"),
    (re.compile(r"\bissues?\s*#?\s*\d+", re.IGNORECASE), "issue number"),
]
SHARED = (re.compile(r"\.\./shared\b|\bshared/data\b"), "../shared reference")
DOC_POINTER = re.compile(r"\bdocs/[\w./-]+\.md\b")


def _files() -> list[Path]:
    out = []
    for d in CODE_DIRS:
        out += [p for p in (ROOT / d).rglob("*") if p.is_file() and p.suffix in SUFFIXES
                and "__pycache__" not in p.parts and not p.name.startswith("LICENSE")]
    return sorted(out)


def _hits(text: str, code: bool = True) -> list[tuple[int, str, str]]:
    hits = []
    for n, line in enumerate(text.splitlines(), 1):
        for rx, what in [*CITATIONS, SHARED] if code else CITATIONS:
            if rx.search(line):
                hits.append((n, what, line.strip()))
    return hits


def test_scanner_catches_each_kind_of_citation():
    for bad in ('"""Stores (METHODS §4): x."""', "# see STACK.md, gotcha 6", "# fixed in issue #12",
                "# RepQ-ViT (§6)", "# reads ../shared/data/holo", "x = 1  # DESIGN §3.2"):
        assert _hits(bad), bad
    for ok in ("METHODS = ('vit', 'sweep')", "ENGINE_METHODS = ('auto',)", "# format: docs/formats.md",
               "# PS3.15 basic profile", "# 2 issues with the input"):
        assert not _hits(ok), ok
    assert not _hits('path = "../shared/data/ecg-real/khan"', code=False)  # a recipe's data path is not a citation


def test_no_code_file_cites_documents_outside_the_repository():
    assert CODE_DIRS, "no source folders found"
    offenders = [f"{p.relative_to(ROOT)}:{n}: {what}: {line}" for p in _files()
                 for n, what, line in _hits(p.read_text(encoding="utf-8", errors="replace"), p.suffix == ".py")]
    assert offenders == [], "\n".join(offenders)


@pytest.mark.parametrize("source", ["README.md", *CODE_DIRS])
def test_docs_pointers_name_existing_files(source):
    paths = [ROOT / source] if (ROOT / source).is_file() else _files()
    if source in CODE_DIRS:
        paths = [p for p in paths if p.is_relative_to(ROOT / source)]
    missing = sorted({f"{p.relative_to(ROOT)}: {m}" for p in paths
                      for m in DOC_POINTER.findall(p.read_text(encoding="utf-8", errors="replace"))
                      if not (ROOT / m).is_file()})
    assert missing == []


def test_readme_links_the_repository_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in ("docs/architecture.md", "docs/formats.md", "docs/methods.md"):
        assert (ROOT / doc).is_file(), doc
        assert doc in readme, doc
