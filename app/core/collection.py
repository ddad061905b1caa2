"""An image collection: the image files under one or more folders, catalogued in SQLite with content hashes,
scanned incrementally (new, changed, renamed, removed, unreadable) and with thumbnails cached on disk."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput, Cancelled
from .io.images import IMAGE_SUFFIXES, MAX_PIXELS

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    root TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    embedded TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS files_sha ON files(sha256);
CREATE INDEX IF NOT EXISTS files_root ON files(root);
"""
_INSERT = ("INSERT INTO files (path, root, size, mtime_ns, sha256, width, height, error) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


def is_image_name(path: str | Path) -> bool:
    """True when the file's suffix is one the app reads as an image (IMAGE_SUFFIXES, the one suffix registry)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def iter_files(root: Path, accept: Callable[[Path], bool] = is_image_name) -> Iterator[Path]:
    """Files under `root` that `accept` keeps, recursively, in sorted order (name by name at each level, the order
    of sorted paths); hidden files and folders and folders that cannot be listed are skipped; symbolic links to
    folders are not followed (links to files are yielded: the caller decides what an unreadable one means)."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            if e.is_dir(follow_symlinks=False):
                yield from iter_files(Path(e.path), accept)
            elif accept(Path(e.path)):
                yield Path(e.path)
        except OSError:
            continue


def iter_image_files(root: Path) -> Iterator[Path]:
    """Image files under `root` (iter_files with the image suffix registry)."""
    return iter_files(root, is_image_name)


def file_sha256(path: str | Path, extra: Iterable[str | Path] = (), chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, continued over `extra` files (e.g. the data files of a multi-file record)."""
    h = hashlib.sha256()
    for part in (path, *extra):
        with open(part, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    return h.hexdigest()


def _header(path: Path) -> tuple[int, int, str]:
    """(width, height, "") for a readable image header, else (0, 0, reason)."""
    from .io.images import check_image_header

    try:
        w, h = check_image_header(path, MAX_PIXELS)
    except BadInput as e:
        msg = str(e)
        return 0, 0, msg[len(str(path)) + 2:] if msg.startswith(f"{path}: ") else msg
    return w, h, ""


def _writable_file(path: Path) -> bool:
    """Whether `path` and its folder can be written (SQLite needs the folder for its journal)."""
    return os.access(path, os.W_OK) and _writable_folder(path.parent)


def _writable_folder(folder: Path) -> bool:
    """Probed with a temporary file: os.access says yes to root on a read-only mount."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".vitascope-probe-"):
            pass
    except OSError:
        return False
    return True


@dataclass
class FileRecord:
    id: int
    path: str
    root: str
    size: int
    mtime_ns: int
    sha256: str
    width: int = 0
    height: int = 0
    error: str = ""
    embedded: str = ""  # tag of the embedding stored for this content ("" = none yet)

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class ScanReport:
    """What one scan changed. Ids are catalogue ids; `unreadable` lists (path, reason)."""

    new: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path); the id is kept
    removed: list[int] = field(default_factory=list)
    unchanged: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{len(self.new)} new, {len(self.changed)} changed, {len(self.renamed)} renamed, "
                f"{len(self.removed)} removed, {self.unchanged} unchanged, {len(self.unreadable)} unreadable")


Progress = Callable[[int, int, str], None]  # (done, total, path)


class Collection:
    """A SQLite catalogue of image files. `readonly=True` opens an existing catalogue without ever writing; an
    existing catalogue that cannot be written (a read-only disk, no write permission) is opened read-only by
    itself (`readonly` becomes True). Writing to a read-only catalogue (scan, marks) raises BadInput."""

    def __init__(self, db_path: str | Path, readonly: bool = False) -> None:
        self.path = Path(db_path)
        self._not_writable = not readonly and self.path.is_file() and not _writable_file(self.path)
        self.readonly = readonly or self._not_writable
        if self.path.is_dir():
            raise BadInput(f"{self.path}: is a folder; give a catalogue file path (e.g. photos.vdb)")
        try:
            if self.readonly:
                if not self.path.is_file():
                    raise BadInput(f"{self.path}: no such catalogue")
                self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not self.path.exists() and not _writable_folder(self.path.parent):
                    raise BadInput(f"{self.path}: cannot create the catalogue (the folder is read-only)")
                self.db = sqlite3.connect(self.path)
                self.db.executescript(_SCHEMA)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                self.db.commit()
            self._check_schema()
        except sqlite3.DatabaseError as e:
            raise BadInput(f"{self.path}: not a usable catalogue ({e})") from None
        except OSError as e:
            raise BadInput(f"{self.path}: cannot create the catalogue ({e.strerror or e})") from None

    def _check_schema(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or int(row[0]) > SCHEMA_VERSION:
            raise BadInput(f"{self.path}: catalogue schema {row[0] if row else '?'} is not supported")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- metadata -------------------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str = "") -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self._writable()
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        self.db.commit()

    def roots(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT root FROM files ORDER BY root")]

    # ---- records --------------------------------------------------------------------------------------------
    _COLS = "id, path, root, size, mtime_ns, sha256, width, height, error, embedded"

    def records(self, ok_only: bool = False) -> list[FileRecord]:
        q = f"SELECT {self._COLS} FROM files" + (" WHERE error=''" if ok_only else "") + " ORDER BY id"
        return [FileRecord(*r) for r in self.db.execute(q)]

    def record(self, file_id: int) -> FileRecord | None:
        r = self.db.execute(f"SELECT {self._COLS} FROM files WHERE id=?", (int(file_id),)).fetchone()
        return FileRecord(*r) if r else None

    def by_path(self, path: str | Path) -> FileRecord | None:
        r = self.db.execute(f"SELECT {self._COLS} FROM files WHERE path=?", (str(Path(path).resolve()),)).fetchone()
        return FileRecord(*r) if r else None

    def paths(self, ids: Iterable[int]) -> list[str]:
        out = []
        for i in ids:
            r = self.db.execute("SELECT path FROM files WHERE id=?", (int(i),)).fetchone()
            out.append(r[0] if r else "")
        return out

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM files").fetchone()[0])

    def unreadable(self) -> list[tuple[str, str]]:
        return [(p, e) for p, e in self.db.execute("SELECT path, error FROM files WHERE error!='' ORDER BY path")]

    def pending(self, tag: str) -> list[FileRecord]:
        """Readable files whose stored embedding is missing or was made under another tag (e.g. another model)."""
        q = f"SELECT {self._COLS} FROM files WHERE error='' AND embedded!=? ORDER BY id"
        return [FileRecord(*r) for r in self.db.execute(q, (tag,))]

    def mark_embedded(self, ids: Iterable[int], tag: str) -> None:
        self._writable()
        self.db.executemany("UPDATE files SET embedded=? WHERE id=?", [(tag, int(i)) for i in ids])
        self.db.commit()

    def mark_unreadable(self, file_id: int, reason: str) -> None:
        self._writable()
        self.db.execute("UPDATE files SET error=?, embedded='' WHERE id=?", (reason or "unreadable", int(file_id)))
        self.db.commit()

    def _writable(self) -> None:
        if self._not_writable:
            raise BadInput(f"{self.path}: catalogue cannot be written (read-only disk or no permission); opened "
                           "read-only")
        if self.readonly:
            raise BadInput(f"{self.path}: catalogue is open read-only")

    # ---- scanning -------------------------------------------------------------------------------------------
    def scan(self, roots: Iterable[str | Path], progress: Progress | None = None,
             cancelled: Callable[[], bool] | None = None, prune_other_roots: bool = False) -> ScanReport:
        """Bring the catalogue in line with the image files under `roots`: hash new and changed files (size or
        mtime differ), keep the id of a file that was moved or renamed (same content, old path gone), forget
        files that disappeared. An unreadable file is recorded with its reason, never fatal. `cancelled()` is
        polled between files; on cancel the work done so far is committed and Cancelled is raised."""
        self._writable()
        t0 = time.perf_counter()
        rep = ScanReport()
        root_paths = []
        for r in roots:
            p = Path(r)
            if not p.is_dir():
                raise BadInput(f"{p}: no such folder")
            root_paths.append(p.resolve())
        listing: list[tuple[Path, str]] = []
        for root in root_paths:
            listing.extend((f, str(root)) for f in iter_image_files(root))
        seen: set[str] = set()
        known = {r[0]: (r[1], r[2], r[3], r[4]) for r in
                 self.db.execute("SELECT path, id, size, mtime_ns, sha256 FROM files")}
        scanned_roots = {str(r) for r in root_paths}
        fresh: list[tuple[str, str, int, int, str, int, int, str]] = []  # new paths, resolved after removals
        total = len(listing)
        try:
            for n, (f, root) in enumerate(listing):
                if cancelled is not None and cancelled():
                    for row in fresh:  # keep the hashing done so far; renames are matched by the full scan
                        self.db.execute(_INSERT, row)
                    raise Cancelled()
                key = str(f)
                if key in seen:
                    continue
                seen.add(key)
                if progress is not None:
                    progress(n, total, key)
                try:
                    st = f.stat()
                except OSError as e:
                    rep.unreadable.append((key, f"cannot stat ({e.strerror or e})"))
                    continue
                if not stat.S_ISREG(st.st_mode):  # a pipe or device named like an image: reading it could block
                    rep.unreadable.append((key, "not a regular file"))
                    continue
                old = known.get(key)
                if old is not None and old[1] == st.st_size and old[2] == st.st_mtime_ns:
                    rep.unchanged += 1
                    continue
                try:
                    sha = file_sha256(f)
                except OSError as e:
                    reason = f"cannot read ({e.strerror or e})"
                    rep.unreadable.append((key, reason))
                    if old is not None:
                        self.db.execute("UPDATE files SET error=?, embedded='' WHERE id=?", (reason, old[0]))
                    continue
                w, h, err = _header(f)
                if err:
                    rep.unreadable.append((key, err))
                if old is not None:
                    if sha != old[3]:
                        rep.changed.append(old[0])
                        self.db.execute("UPDATE files SET size=?, mtime_ns=?, sha256=?, width=?, height=?, "
                                        "error=?, embedded='' WHERE id=?", (st.st_size, st.st_mtime_ns, sha, w, h,
                                                                            err, old[0]))
                    else:  # touched, same bytes
                        rep.unchanged += 1
                        self.db.execute("UPDATE files SET mtime_ns=? WHERE id=?", (st.st_mtime_ns, old[0]))
                    continue
                fresh.append((key, root, st.st_size, st.st_mtime_ns, sha, w, h, err))
            # files that vanished: under a scanned root (or anywhere, when pruning) and not seen now
            gone = {p: v for p, v in known.items() if p not in seen and
                    (prune_other_roots or any(p == r or p.startswith(r + os.sep) for r in scanned_roots))}
            gone_by_sha: dict[str, list[tuple[str, int]]] = {}
            for p, (fid, _s, _m, sha) in gone.items():
                gone_by_sha.setdefault(sha, []).append((p, fid))
            for key, root, size, mtime, sha, w, h, err in fresh:
                moved = gone_by_sha.get(sha)
                if moved:
                    old_path, fid = moved.pop(0)
                    del gone[old_path]
                    rep.renamed.append((old_path, key))
                    self.db.execute("UPDATE files SET path=?, root=?, size=?, mtime_ns=?, width=?, height=?, "
                                    "error=? WHERE id=?", (key, root, size, mtime, w, h, err, fid))
                    continue
                cur = self.db.execute(_INSERT, (key, root, size, mtime, sha, w, h, err))
                rep.new.append(int(cur.lastrowid))
            for _p, (fid, *_rest) in gone.items():
                rep.removed.append(fid)
            self.db.executemany("DELETE FROM files WHERE id=?", [(i,) for i in rep.removed])
        finally:
            self.db.commit()
        if progress is not None:
            progress(total, total, "")
        rep.seconds = time.perf_counter() - t0
        return rep

    # ---- thumbnails -----------------------------------------------------------------------------------------
    def thumbs_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".thumbs")

    def _thumb_dirs(self) -> list[Path]:
        """Where thumbnails are cached: beside the catalogue, else (a read-only disk) in the user's data folder;
        both are keyed by content hash, so one cache serves every catalogue that holds the same bytes."""
        from .paths import user_home

        return [self.thumbs_dir(), user_home() / "thumbnails"]

    def thumbnail(self, file_id: int, size: int = 128) -> Path | None:
        """A JPEG thumbnail (longest side `size`) cached on disk by content hash; None when the image cannot be
        read or no cache folder can be written."""
        rec = self.record(file_id)
        if rec is None or rec.error:
            return None
        name = Path(rec.sha256[:2]) / f"{rec.sha256}_{size}.jpg"
        for d in self._thumb_dirs():
            if (d / name).is_file():
                return d / name
        import cv2

        from .io.images import read_image

        try:
            img = read_image(rec.path)
        except BadInput:
            return None
        h, w = img.shape[:2]
        s = size / max(h, w)
        if s < 1:
            img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return None
        for d in self._thumb_dirs():
            out = d / name
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(buf.tobytes())
                tmp.replace(out)
            except OSError:
                continue
            return out
        return None
