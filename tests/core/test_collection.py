"""The image collection on thousands of generated files: incremental scans (new, changed, renamed, removed),
unreadable files (and pipes) listed but never fatal, a read-only catalogue and a real read-only disk, and thumbnails
cached by content."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.core.collection import Collection, file_sha256, iter_files, iter_image_files
from app.core.errors import BadInput, Cancelled
from tests.helpers import run_sql

N_FILES = 2000


def _write_pngs(folder, n, seed=0):
    """n distinct tiny PNGs (different pixels → different hashes) in 20 sub-folders."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        sub = folder / f"d{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        img[0, 0] = [i % 256, (i // 256) % 256, seed % 256]
        p = sub / f"img{i:05d}.png"
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    _write_pngs(root, N_FILES)
    return root


def test_first_scan_finds_every_image_and_skips_other_files(tree, tmp_path):
    (tree / "notes.txt").write_text("not an image")
    (tree / ".hidden").mkdir(exist_ok=True)
    cv2.imwrite(str(tree / ".hidden" / "x.png"), np.zeros((4, 4, 3), np.uint8))
    with Collection(tmp_path / "c.vdb") as col:
        rep = col.scan([tree])
        assert len(rep.new) == N_FILES and not rep.changed and not rep.removed and not rep.unreadable
        assert len(col) == N_FILES
        assert len({r.sha256 for r in col.records()}) == N_FILES
        assert all(r.width == 8 and r.height == 8 for r in col.records())
        rep2 = col.scan([tree])  # nothing changed on disk → nothing hashed again
        assert rep2.unchanged == N_FILES and not rep2.new and not rep2.changed and not rep2.removed


def test_incremental_scan_new_changed_renamed_removed(tmp_path):
    root = tmp_path / "imgs"
    paths = _write_pngs(root, 1200, seed=1)
    with Collection(tmp_path / "c.vdb") as col:
        col.scan([root])
        ids_before = {r.path: r.id for r in col.records()}
        col.mark_embedded([r.id for r in col.records()], "m1")
        # 50 removed, 40 renamed/moved, 30 rewritten with new content, 25 added, 10 touched with the same bytes
        for p in paths[:50]:
            p.unlink()
        moved = []
        for p in paths[50:90]:
            dst = root / "moved" / ("r_" + p.name)
            dst.parent.mkdir(exist_ok=True)
            p.rename(dst)
            moved.append((p, dst))
        for p in paths[90:120]:
            img = cv2.imread(str(p))
            img[4, 4] = 255 - img[4, 4]
            cv2.imwrite(str(p), img)
            st = p.stat()
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        for p in paths[120:130]:
            st = p.stat()
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        _write_pngs(root / "new", 25, seed=2)
        rep = col.scan([root])
        assert len(rep.removed) == 50
        assert sorted(rep.removed) == sorted(ids_before[str(p)] for p in paths[:50])
        assert len(rep.renamed) == 40
        for old, new in moved:  # a moved file keeps its id and its embedding
            rec = col.by_path(new)
            assert rec is not None and rec.id == ids_before[str(old)] and rec.embedded == "m1"
        assert sorted(rep.changed) == sorted(ids_before[str(p)] for p in paths[90:120])
        assert len(rep.new) == 25
        assert rep.unchanged == 1200 - 50 - 40 - 30
        assert len(col) == 1200 - 50 + 25
        pending = {r.id for r in col.pending("m1")}  # changed and new need embedding; nothing else
        assert pending == set(rep.changed) | set(rep.new)


def test_unreadable_files_are_listed_never_fatal(tmp_path):
    root = tmp_path / "imgs"
    _write_pngs(root, 30, seed=3)
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("hello")
    (root / "dangling.png").symlink_to(root / "nowhere.png")
    with Collection(tmp_path / "c.vdb") as col:
        rep = col.scan([root])
        bad = dict(rep.unreadable)
        assert set(bad) == {str(root / n) for n in ("corrupt.png", "empty.jpg", "text.jpg", "dangling.png")}
        assert all(bad.values())  # each with a reason
        assert len(col.records(ok_only=True)) == 30
        assert {p for p, _ in col.unreadable()} == set(bad) - {str(root / "dangling.png")}
        assert all(r.ok for r in col.pending("m"))


def test_scan_cancel_keeps_progress_and_resumes(tmp_path):
    root = tmp_path / "imgs"
    _write_pngs(root, 300, seed=4)
    seen = []
    with Collection(tmp_path / "c.vdb") as col:
        def progress(done, total, path):
            seen.append(done)
        with pytest.raises(Cancelled):
            col.scan([root], progress=progress, cancelled=lambda: len(seen) >= 100)
        kept = len(col)
        assert 0 < kept < 300  # what was hashed before the cancel is kept...
        rep = col.scan([root])  # ...and the next scan finishes the rest without hashing it again
        assert len(col) == 300 and len(rep.new) == 300 - kept and rep.unchanged == kept


def test_read_only_disk(tmp_path):
    root = tmp_path / "imgs"
    _write_pngs(root, 50, seed=5)
    db = tmp_path / "cat" / "c.vdb"
    with Collection(db) as col:
        col.scan([root])
    before = {p: p.read_bytes() for p in db.parent.iterdir()}
    os.chmod(root, 0o555)
    try:
        with Collection(db, readonly=True) as ro:
            assert len(ro) == 50 and ro.records()[0].sha256
            with pytest.raises(BadInput, match="read-only"):
                ro.scan([root])
            with pytest.raises(BadInput, match="read-only"):
                ro.mark_embedded([1], "x")
        assert {p: p.read_bytes() for p in db.parent.iterdir()} == before  # nothing written
        assert not any(p.name.endswith(".thumbs") for p in root.iterdir())
    finally:
        os.chmod(root, 0o755)
    with pytest.raises(BadInput, match="no such catalogue"):
        Collection(tmp_path / "missing.vdb", readonly=True)


def test_bad_catalogue_and_bad_roots_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.vdb"
    junk.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(BadInput) as e:
        Collection(junk)
    assert "\n" not in str(e.value) and str(junk) in str(e.value)
    with Collection(tmp_path / "c.vdb") as col, pytest.raises(BadInput, match="no such folder"):
        col.scan([tmp_path / "absent"])
    with pytest.raises(BadInput, match="is a folder"):
        Collection(tmp_path)


def test_newer_schema_is_refused(tmp_path):
    db = tmp_path / "c.vdb"
    Collection(db).close()
    run_sql(db, "UPDATE meta SET value='99' WHERE key='schema'")
    with pytest.raises(BadInput, match="schema 99"):
        Collection(db)


def test_thumbnails_cached_by_content(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    big = np.zeros((300, 600, 3), np.uint8)
    big[:, :300] = (0, 0, 255)  # BGR red on the left half
    cv2.imwrite(str(root / "a.png"), big)
    shutil.copy(root / "a.png", root / "b.png")  # same bytes → one cached thumbnail
    with Collection(tmp_path / "c.vdb") as col:
        col.scan([root])
        ra, rb = col.by_path(root / "a.png"), col.by_path(root / "b.png")
        ta = col.thumbnail(ra.id, 128)
        assert ta is not None and ta == col.thumbnail(rb.id, 128)
        t = cv2.imread(str(ta))
        assert t.shape[:2] == (64, 128)
        assert t[32, 10, 2] > 200 and t[32, 120, 2] < 60  # red stays on the left
        mtime = ta.stat().st_mtime_ns
        assert col.thumbnail(ra.id, 128).stat().st_mtime_ns == mtime  # served from the cache


def test_iter_image_files_sorted_and_recursive(tmp_path):
    for rel in ("b/2.PNG", "a/1.jpg", "a/z/3.tif", "c.txt"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    got = [str(p.relative_to(tmp_path)) for p in iter_image_files(tmp_path)]
    assert got == ["a/1.jpg", "a/z/3.tif", "b/2.PNG"]


def test_a_pipe_named_like_an_image_is_unreadable_not_a_hang(tmp_path):
    root = tmp_path / "imgs"
    _write_pngs(root, 5, seed=6)
    os.mkfifo(root / "pipe.png")  # opening it for reading would block the scan forever
    with Collection(tmp_path / "c.vdb") as col:
        rep = col.scan([root])
        assert dict(rep.unreadable) == {str(root / "pipe.png"): "not a regular file"}
        assert len(rep.new) == 5


def test_iter_files_takes_a_predicate_and_skips_hidden_folders(tmp_path):
    for rel in ("a/x.dcm", "a/.git/y.dcm", "b/z.DCM", "b/w.png", ".hidden.dcm"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    got = [p.relative_to(tmp_path).as_posix()
           for p in iter_files(tmp_path, lambda p: p.suffix.lower() == ".dcm")]
    assert got == ["a/x.dcm", "b/z.DCM"]
    assert got == sorted(got)  # the walk order is the order of sorted paths


def test_file_sha256_covers_the_extra_parts(tmp_path):
    (tmp_path / "r.hea").write_text("header")
    (tmp_path / "r.dat").write_bytes(b"\x00\x01")
    one = file_sha256(tmp_path / "r.hea")
    both = file_sha256(tmp_path / "r.hea", [tmp_path / "r.dat"])
    assert one != both
    (tmp_path / "r.dat").write_bytes(b"\x00\x02")
    assert file_sha256(tmp_path / "r.hea", [tmp_path / "r.dat"]) != both and file_sha256(tmp_path / "r.hea") == one


_RO_CHILD = r"""
import json, sys
import numpy as np
from pathlib import Path
from app.core.collection import Collection
from app.core.errors import BadInput
from app.core.vector_index import ExactIndex, load_index

db, root = Path(sys.argv[1]), Path(sys.argv[2])
out = {}
with Collection(db) as col:  # not asked for read-only: it notices the disk
    out["readonly"] = col.readonly
    out["n"] = len(col)
    try:
        col.scan([root])
    except BadInput as e:
        out["scan"] = str(e)
    thumb = col.thumbnail(col.records()[0].id, 32)
    out["thumb"] = str(thumb) if thumb else None
idx = load_index(db)
ids, scores = idx.search(np.eye(4, dtype=np.float32)[:1], 3)
out["hits"] = ids[0].tolist()
try:
    idx.save(db)
except BadInput as e:
    out["save"] = str(e)
try:
    Collection(db.with_name("new.vdb"))
except BadInput as e:
    out["create"] = str(e)
print(json.dumps(out))
"""


def _run_on_readonly_disk(folder, args, env):
    """Run _RO_CHILD with `folder` read-only: a read-only bind mount in a user namespace (root ignores file
    permissions), or file permissions when not root; skipped when neither is possible."""
    import subprocess
    import sys

    cmd = [sys.executable, "-c", _RO_CHILD, *map(str, args)]
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
        for p in modes:
            os.chmod(p, 0o555 if p.is_dir() else 0o444)
        try:
            return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        finally:
            for p, m in modes.items():
                os.chmod(p, m)
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("cannot make a read-only mount here (no user namespaces)")
    q = str(folder).replace("'", "")
    script = (f"mount --bind '{q}' '{q}' && mount -o remount,bind,ro '{q}' '{q}' && exec "
              + " ".join(f"'{c}'" for c in cmd[:2]) + ' "$0" "$@"')
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, _RO_CHILD, *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_collection_on_a_read_only_disk(tmp_path):
    from app.core.vector_index import ExactIndex

    root, disk = tmp_path / "imgs", tmp_path / "disk"
    _write_pngs(root, 40, seed=7)
    db = disk / "c.vdb"
    with Collection(db) as col:
        col.scan([root])
        ids = np.array([r.id for r in col.records()])
    vecs = np.random.default_rng(0).normal(size=(len(ids), 4)).astype(np.float32)
    vecs[0] = [10, 0, 0, 0]
    index = ExactIndex(4)
    index.add(ids, vecs)
    index.save(db)
    before = {p.name: p.read_bytes() for p in disk.iterdir()}
    home = tmp_path / "home"
    env = {**os.environ, "VITASCOPE_HOME": str(home), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    r = _run_on_readonly_disk(disk, [db, root], env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["readonly"] is True and out["n"] == 40
    assert "read-only" in out["scan"]
    assert out["thumb"] and out["thumb"].startswith(str(home))  # the cache moves to the user's folder
    assert out["hits"][0] == int(ids[0])
    assert "cannot save" in out["save"] and "cannot create" in out["create"]
    assert {p.name: p.read_bytes() for p in disk.iterdir()} == before  # nothing written on the disk
