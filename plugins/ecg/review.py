"""The ECG review worklist (SQLite): items new → screened → reviewed, model results (with the uncertainty flag,
scope and second opinion), and an append-only, hash-chained audit log of every screening and reviewer decision."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from app.core.collection import file_sha256, iter_files
from app.core.errors import BadInput, VitascopeError
from app.core.io.images import IMAGE_SUFFIXES

from .readers import DICOM_SUFFIXES
from .types import CLASSES, EcgInput, ScreenResult, SecondOpinion

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
STATUSES = ("new", "screened", "reviewed")
ACTIONS = ("confirm", "override", "uncertain")
GENESIS = "0" * 64
# what a worklist folder scan picks up: DICOM, WFDB headers (one item per record) and the image suffix registry
FILE_EXTENSIONS = tuple(sorted(DICOM_SUFFIXES | {".hea"} | IMAGE_SUFFIXES))
ORDER_BY = {
    "added": "id", "file": "path", "source": "source", "label": "label", "p_abnormal": "p_abnormal",
    "patient": "patient_name", "patient_id": "patient_id", "study_date": "study_date", "status": "status",
    "screened_at": "screened_at", "decision": "decision_action", "reviewer": "reviewer", "kind": "kind",
    "uncertain": "uncertain", "ood_score": "ood_score", "scope": "scope",
}
PATIENT_KEYS = {"PatientID": "patient_id", "PatientName": "patient_name", "StudyDate": "study_date"}

# version 1 of the schema; _MIGRATIONS bring it up to SCHEMA_VERSION
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'image',
    patient_id TEXT, patient_name TEXT, study_date TEXT,
    meta TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'screened', 'reviewed')),
    label TEXT, probabilities TEXT, p_abnormal REAL, measurements TEXT,
    model_id TEXT, model_sha256 TEXT, screened_at TEXT,
    decision_action TEXT, decision_label TEXT, reviewer TEXT, decided_at TEXT, decision_comment TEXT,
    added_at TEXT NOT NULL,
    UNIQUE (source, sha256)
);
CREATE INDEX items_status ON items (status);
CREATE INDEX items_label ON items (label);
CREATE INDEX items_p_abnormal ON items (p_abnormal);
CREATE INDEX items_patient ON items (patient_name);
CREATE TABLE heatmaps (
    item_id INTEGER PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
    height INTEGER NOT NULL, width INTEGER NOT NULL, box TEXT, data BLOB NOT NULL
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE RESTRICT,
    item_sha256 TEXT NOT NULL,
    action TEXT NOT NULL,
    label TEXT,
    comment TEXT NOT NULL DEFAULT '',
    model_id TEXT, model_sha256 TEXT,
    shown TEXT NOT NULL DEFAULT '{}',
    prev_hash TEXT NOT NULL,
    row_hash TEXT NOT NULL
);
CREATE INDEX audit_item ON audit (item_id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER items_keep_audited BEFORE DELETE ON items
WHEN EXISTS (SELECT 1 FROM audit WHERE item_id = OLD.id)
BEGIN SELECT RAISE(ABORT, 'an item with audit rows cannot be deleted'); END;
"""
_TRIGGERS = ("audit_no_update", "audit_no_delete", "items_keep_audited")
# each step takes a database from version (key - 1) to key; a new worklist is created at version 1 and migrated.
# Older rows keep NULL in the new columns: their model did not assess uncertainty, scope or a second opinion.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE items ADD COLUMN uncertain INTEGER",
        "ALTER TABLE items ADD COLUMN reasons TEXT",
        "ALTER TABLE items ADD COLUMN ood_score REAL",
        "ALTER TABLE items ADD COLUMN scope TEXT",
        "ALTER TABLE items ADD COLUMN second_opinion TEXT",
        "ALTER TABLE items ADD COLUMN disagreement TEXT",
        "CREATE INDEX items_uncertain ON items (uncertain)"),
}
_JSON_COLUMNS = ("meta", "probabilities", "measurements", "reasons", "second_opinion")


class WorklistCorrupt(BadInput):
    """The worklist file is not a readable SQLite database (or not a Vitascope worklist); it was left untouched."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def sha256_file(path: Path, extra: Iterable[Path] = ()) -> str:
    """Content hash of a file (and, for WFDB records, of its data files too)."""
    return file_sha256(path, extra)


def guess_kind(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in (".dcm", ".dicom") or (not ext and _is_dicom(path)):
        return "dicom"
    if ext == ".hea":
        return "wfdb"
    return "image"


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _is_ecg_file(path: Path) -> bool:
    """A regular file with an ECG suffix (FILE_EXTENSIONS), or an extension-less DICOM file."""
    if not path.is_file():
        return False
    ext = path.suffix.lower()
    return ext in FILE_EXTENSIONS or (not ext and _is_dicom(path))


def _wfdb_parts(path: Path) -> list[Path]:
    """The other files of a WFDB record (same stem), so that a changed .dat changes the item's hash."""
    if path.suffix.lower() != ".hea":
        return []
    return sorted(p for p in path.parent.glob(path.stem + ".*") if p != path and p.is_file())


@dataclass
class Item:
    """One screenable ECG in the worklist (a file, or one group/record inside it)."""

    id: int
    path: str
    source: str
    sha256: str
    kind: str
    status: str
    added_at: str
    patient_id: str | None = None
    patient_name: str | None = None
    study_date: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    p_abnormal: float | None = None
    measurements: dict[str, float] = field(default_factory=dict)
    model_id: str | None = None
    model_sha256: str | None = None
    screened_at: str | None = None
    decision_action: str | None = None
    decision_label: str | None = None
    reviewer: str | None = None
    decided_at: str | None = None
    decision_comment: str | None = None
    uncertain: bool | None = None          # None: screened by a model that did not assess it (or not screened)
    reasons: list[str] = field(default_factory=list)
    ood_score: float | None = None
    scope: str | None = None
    second_opinion: dict[str, Any] | None = None  # SecondOpinion.to_json()
    disagreement: str | None = None

    @property
    def opinion(self) -> SecondOpinion | None:
        """The stored second opinion as a SecondOpinion, or None."""
        return _opinion(self.second_opinion)

    @property
    def final_label(self) -> str | None:
        """The reviewer's label when the latest decision is final (confirm / override), else None."""
        return self.decision_label if self.decision_action in ("confirm", "override") else None

    def result(self) -> ScreenResult | None:
        """The stored model result (without the heatmap; see `Worklist.heatmap`)."""
        if self.label is None:
            return None
        return ScreenResult(self.source, self.label, dict(self.probabilities), self.model_id or "",
                            self.model_sha256 or "", None, dict(self.measurements),
                            uncertain=bool(self.uncertain), reasons=list(self.reasons), ood_score=self.ood_score,
                            scope=self.scope or "12-lead", second_opinion=self.opinion,
                            disagreement=self.disagreement or "")


def _opinion(d: dict[str, Any] | None) -> SecondOpinion | None:
    if not d:
        return None
    return SecondOpinion(d.get("label"), [str(x) for x in d.get("findings") or []],
                         [str(x) for x in d.get("leads") or []], str(d.get("rhythm") or ""),
                         {str(k): float(v) for k, v in (d.get("measurements") or {}).items()},
                         tuple(d.get("assessed") or CLASSES))


@dataclass
class Decision:
    """One audit-log row: a reviewer decision (confirm / override / uncertain) or a screening ("screen")."""

    id: int
    at: str
    reviewer: str
    item_id: int
    item_sha256: str
    action: str
    label: str | None
    comment: str
    model_id: str | None
    model_sha256: str | None
    shown: dict[str, Any]
    prev_hash: str
    row_hash: str


@dataclass
class AuditCheck:
    """The result of `verify_audit`: true when the chain is intact; `problems` names each broken row."""

    ok: bool
    rows: int
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok


def _row_hash(prev: str, row: dict[str, Any]) -> str:
    content = json.dumps([row["id"], row["at"], row["reviewer"], row["item_id"], row["item_sha256"], row["action"],
                          row["label"], row["comment"], row["model_id"], row["model_sha256"], row["shown"]],
                         sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + content).encode("utf-8")).hexdigest()


def _statements(script: str) -> list[str]:
    """Split a schema script into statements (executescript would commit the open transaction)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return out


def _p_abnormal(probs: dict[str, float]) -> float | None:
    if not probs:
        return None
    if "normal" in probs:
        return float(max(0.0, min(1.0, 1.0 - probs["normal"])))
    return float(sum(v for k, v in probs.items() if k != "normal"))


class Worklist:
    """A worklist in one SQLite file, created on first use. Safe to share between threads (one connection, a lock)
    and to open twice on the same file (WAL mode, busy timeout, BEGIN IMMEDIATE writes).

    A damaged file raises `WorklistCorrupt` and is left untouched; `recover=True` moves it aside
    (`<name>.corrupt-<UTC time>`) and starts a new worklist, recorded in `recovered_from`."""

    def __init__(self, db_path: str | os.PathLike[str], *, recover: bool = False) -> None:
        self.path = Path(db_path)
        self.recovered_from: Path | None = None
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BadInput(f"{self.path.parent}: cannot create the worklist folder ({e.strerror or e})") from e
        try:
            self._conn = self._open()
        except WorklistCorrupt:
            if not recover:
                raise
            self.recovered_from = self._move_aside()
            self._conn = self._open()

    # opening -----------------------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as e:
            raise BadInput(f"{self.path}: cannot open the worklist ({e})") from e
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute("PRAGMA synchronous = FULL")  # the audit log is a record: durable commits
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(str(check).splitlines()[0])
            self._ensure_schema(conn)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise WorklistCorrupt(f"{self.path}: the worklist database is damaged or not a SQLite file ({e}); "
                                  "it was left untouched") from e
        except BaseException:
            conn.close()
            raise
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "meta" not in tables:
                if tables - {"sqlite_sequence"}:
                    raise WorklistCorrupt(f"{self.path}: this SQLite file is not a Vitascope ECG worklist; "
                                          "it was left untouched")
                for statement in _statements(_SCHEMA):
                    conn.execute(statement)
                conn.execute("INSERT INTO meta VALUES ('schema_version', '1'), ('created_at', ?), ('audit_head', ?)",
                             (utc_now(), f"0:{GENESIS}"))
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise BadInput(f"{self.path}: the worklist was written by a newer Vitascope "
                               f"(schema {version}, this one reads {SCHEMA_VERSION})")
            if version < 1:
                raise WorklistCorrupt(f"{self.path}: the worklist has no schema version; it was left untouched")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    conn.execute(statement)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(target),))
                if "meta" in tables:
                    log.info("migrated the worklist %s to schema %d", self.path, target)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _move_aside(self) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                os.replace(src, Path(str(aside) + suffix))
        log.warning("moved the damaged worklist %s aside to %s", self.path, aside)
        return aside

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Worklist:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(args)).fetchall()

    # adding ------------------------------------------------------------------------------------------------
    def add_files(self, paths: Iterable[str | os.PathLike[str]],
                  read: Callable[[Path], list[EcgInput]] | None = None,
                  errors: list[str] | None = None) -> int:
        """Add files; with `read` (e.g. the engine's reader) one item per input it returns (DICOM groups, WFDB
        records, with patient/study fields), else one item per file. Returns how many are new: an item already in
        the worklist (same source and content sha256) is skipped. A file that cannot be read raises BadInput, or is
        skipped with a one-line message appended to `errors` when a list is given. The files are hashed and read
        before the (short) write transaction, so a slow reader never holds the database lock."""
        rows: list[tuple[Any, ...]] = []
        now = utc_now()
        for p in paths:
            path = Path(p).expanduser().resolve()
            try:
                if not path.is_file():
                    raise BadInput(f"{path}: no such file")
                try:
                    sha = sha256_file(path, _wfdb_parts(path))
                except OSError as e:
                    raise BadInput(f"{path}: cannot read ({e.strerror or e})") from e
                if read is None:
                    entries = [(str(path), guess_kind(path), {})]
                else:
                    try:
                        inputs = read(path)
                    except VitascopeError:
                        raise
                    except Exception as e:  # a reader bug: one line for the user, the traceback in the log
                        log.exception("reading %s failed", path)
                        raise BadInput(f"{path}: could not be read ({e.__class__.__name__}: {e})") from e
                    if not inputs:
                        raise BadInput(f"{path}: no ECG found in the file")
                    entries = [(inp.source, inp.kind, dict(inp.meta)) for inp in inputs]
            except VitascopeError as e:
                if errors is None:
                    raise
                errors.append(str(e))
                continue
            for source, kind, meta in entries:
                meta = {str(k): str(v) for k, v in meta.items()}
                pat = {col: meta.get(key) or None for key, col in PATIENT_KEYS.items()}
                rows.append((str(path), source, sha, kind, pat["patient_id"], pat["patient_name"], pat["study_date"],
                             json.dumps(meta, ensure_ascii=False), now))
        if not rows:
            return 0
        with self._tx() as c:
            before = c.total_changes
            c.executemany("INSERT OR IGNORE INTO items (path, source, sha256, kind, patient_id, patient_name, "
                          "study_date, meta, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            return c.total_changes - before

    def add_folder(self, folder: str | os.PathLike[str], read: Callable[[Path], list[EcgInput]] | None = None,
                   errors: list[str] | None = None) -> int:
        """Add every ECG file under `folder` (recursively): DICOM, WFDB headers and images."""
        return self.add_files(self.find_files(folder), read=read, errors=errors)

    @staticmethod
    def find_files(folder: str | os.PathLike[str]) -> list[Path]:
        """The ECG files under a folder (recursively, the collection's walk: sorted, hidden files and folders
        skipped): known extensions, plus extension-less DICOM files."""
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise BadInput(f"{root}: no such folder")
        return list(iter_files(root, _is_ecg_file))

    # reading -----------------------------------------------------------------------------------------------
    @staticmethod
    def _item(row: sqlite3.Row) -> Item:
        d = dict(row)
        for key in _JSON_COLUMNS:
            d[key] = json.loads(d[key]) if d[key] else None
        for key in ("meta", "probabilities", "measurements"):
            d[key] = d[key] or {}
        d["reasons"] = d["reasons"] or []
        d["uncertain"] = None if d["uncertain"] is None else bool(d["uncertain"])
        return Item(**d)

    def get(self, item_id: int) -> Item:
        rows = self._query("SELECT * FROM items WHERE id = ?", (item_id,))
        if not rows:
            raise BadInput(f"worklist item {item_id} does not exist")
        return self._item(rows[0])

    def items(self, status: str | None = None, label: str | None = None, search: str | None = None,
              order_by: str = "added", descending: bool = False, decision: str | None = None,
              limit: int | None = None, flagged: bool | None = None) -> list[Item]:
        """Items filtered by status, model label, latest decision ("none" = not decided), the model's uncertain
        flag (`flagged`) and a search text (file, patient, study date, comment); sorted by `order_by` (one of
        ORDER_BY), empty values last."""
        where, args = [], []
        if flagged is not None:
            where.append("uncertain = 1" if flagged else "(uncertain = 0 OR uncertain IS NULL)")
        if status:
            if status not in STATUSES:
                raise BadInput(f"unknown worklist status {status!r} (expected one of {', '.join(STATUSES)})")
            where.append("status = ?")
            args.append(status)
        if label:
            where.append("label = ?")
            args.append(label)
        if decision:
            if decision == "none":
                where.append("decision_action IS NULL")
            else:
                where.append("decision_action = ?")
                args.append(decision)
        if search:
            like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            cols = ("path", "source", "patient_id", "patient_name", "study_date", "decision_comment", "label",
                    "decision_label", "reviewer")
            where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in cols) + ")")
            args.extend([like] * len(cols))
        if order_by not in ORDER_BY:
            raise BadInput(f"cannot sort the worklist by {order_by!r} (expected one of {', '.join(ORDER_BY)})")
        col = ORDER_BY[order_by]
        direction = "DESC" if descending else "ASC"
        sql = "SELECT * FROM items"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY ({col} IS NULL), {col} {direction}, id {direction}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._item(r) for r in self._query(sql, args)]

    def counts(self) -> dict[str, int]:
        """Items per status, plus "uncertain" (latest decision) and "total"."""
        out = {s: 0 for s in STATUSES}
        for row in self._query("SELECT status, COUNT(*) FROM items GROUP BY status"):
            out[row[0]] = row[1]
        out["uncertain"] = self._query("SELECT COUNT(*) FROM items WHERE decision_action = 'uncertain'")[0][0]
        out["total"] = sum(out[s] for s in STATUSES)
        return out

    def flagged(self) -> int:
        """How many items the model flagged as uncertain."""
        return self._query("SELECT COUNT(*) FROM items WHERE uncertain = 1")[0][0]

    def __len__(self) -> int:
        return self._query("SELECT COUNT(*) FROM items")[0][0]

    # screening ---------------------------------------------------------------------------------------------
    def set_result(self, item_id: int, result: ScreenResult, at: str | None = None) -> None:
        """Store the model's read (label, probabilities, measurements, model id + sha256, heatmap, the uncertain
        flag with its reasons, OOD score, scope, second opinion and disagreement) and log it."""
        item = self.get(item_id)
        probs = {str(k): float(v) for k, v in result.probabilities.items()}
        meas = {str(k): float(v) for k, v in (result.measurements or {}).items()}
        reasons = [str(r) for r in (getattr(result, "reasons", None) or [])]
        ood = getattr(result, "ood_score", None)
        ood = None if ood is None or not np.isfinite(ood) else float(ood)
        opinion = getattr(result, "second_opinion", None)
        opinion_json = opinion.to_json() if opinion is not None else None
        flag = bool(getattr(result, "uncertain", False))
        scope = str(getattr(result, "scope", "") or "12-lead")
        disagreement = str(getattr(result, "disagreement", "") or "")
        at = at or utc_now()
        status = "reviewed" if item.final_label else "screened"
        with self._tx() as c:
            c.execute("UPDATE items SET status = ?, label = ?, probabilities = ?, p_abnormal = ?, measurements = ?, "
                      "model_id = ?, model_sha256 = ?, screened_at = ?, uncertain = ?, reasons = ?, ood_score = ?, "
                      "scope = ?, second_opinion = ?, disagreement = ? WHERE id = ?",
                      (status, result.label, json.dumps(probs), _p_abnormal(probs), json.dumps(meas),
                       result.model_id, result.model_sha256, at, int(flag), json.dumps(reasons), ood, scope,
                       json.dumps(opinion_json) if opinion_json else None, disagreement or None, item_id))
            c.execute("DELETE FROM heatmaps WHERE item_id = ?", (item_id,))
            if result.heatmap is not None:
                hm = np.clip(np.nan_to_num(np.asarray(result.heatmap, np.float32)), 0.0, 1.0)
                if hm.ndim == 2 and hm.size:
                    q = np.round(hm * 255).astype(np.uint8)
                    box = getattr(result, "heatmap_box", None)
                    c.execute("INSERT INTO heatmaps VALUES (?, ?, ?, ?, ?)",
                              (item_id, q.shape[0], q.shape[1], json.dumps(list(box)) if box else None,
                               zlib.compress(q.tobytes(), 6)))
            self._append_audit(c, item, at, f"model:{result.model_id}", "screen", result.label, "",
                               result.model_id, result.model_sha256,
                               {"label": result.label, "probabilities": probs, "measurements": meas,
                                "uncertain": flag, "reasons": reasons, "ood_score": ood, "scope": scope,
                                "second_opinion": opinion_json, "disagreement": disagreement})

    def heatmap(self, item_id: int) -> tuple[np.ndarray, tuple[int, int, int, int] | None] | None:
        """The stored heatmap (h, w) float32 in [0, 1] and the image box it covers (x0, y0, x1, y1) if known."""
        rows = self._query("SELECT height, width, box, data FROM heatmaps WHERE item_id = ?", (item_id,))
        if not rows:
            return None
        h, w, box, data = rows[0]
        arr = np.frombuffer(zlib.decompress(data), np.uint8).reshape(h, w).astype(np.float32) / 255.0
        return arr, (tuple(json.loads(box)) if box else None)

    # decisions ---------------------------------------------------------------------------------------------
    def decide(self, item_id: int, reviewer: str, action: str = "confirm", label: str | None = None,
               comment: str = "", shown: dict[str, Any] | None = None) -> Decision:
        """Record a reviewer decision in the audit log. confirm: agree with the model's label; override: a
        different label from CLASSES; uncertain: no final label yet (an optional leaning), the item stays open.
        `shown` records what the reviewer saw: {"label", "probabilities", "heatmap": bool, ...}."""
        reviewer = (reviewer or "").strip()
        if not reviewer:
            raise BadInput("a reviewer name is needed to record a decision")
        if len(reviewer) > 200:
            raise BadInput("the reviewer name is longer than 200 characters")
        if action not in ACTIONS:
            raise BadInput(f"unknown review action {action!r} (expected one of {', '.join(ACTIONS)})")
        comment = (comment or "").strip()
        if len(comment) > 10_000:
            raise BadInput("the comment is longer than 10,000 characters")
        if label is not None and label not in CLASSES:
            raise BadInput(f"unknown ECG class {label!r} (expected one of {', '.join(CLASSES)})")
        item = self.get(item_id)
        if action == "confirm":
            if item.label is None:
                raise BadInput(f"{item.source}: not screened yet, so there is no model label to confirm")
            if label is not None and label != item.label:
                raise BadInput(f"{item.source}: confirm keeps the model's label {item.label!r}; use override")
            label = item.label
        elif action == "override":
            if label is None:
                raise BadInput(f"{item.source}: an override needs the reviewer's class")
            if label == item.label:
                raise BadInput(f"{item.source}: the override equals the model's label {label!r}; use confirm")
        if shown is None:
            shown = {"label": item.label, "probabilities": item.probabilities, "heatmap": None,
                     "uncertain": item.uncertain, "second_opinion": (item.second_opinion or {}).get("label"),
                     "disagreement": item.disagreement}
        shown = json.loads(json.dumps(shown, default=str))
        at = utc_now()
        final = action in ("confirm", "override")
        status = "reviewed" if final else ("screened" if item.label is not None else "new")
        with self._tx() as c:
            decision = self._append_audit(c, item, at, reviewer, action, label, comment, item.model_id,
                                          item.model_sha256, shown)
            c.execute("UPDATE items SET status = ?, decision_action = ?, decision_label = ?, reviewer = ?, "
                      "decided_at = ?, decision_comment = ? WHERE id = ?",
                      (status, action, label, reviewer, at, comment, item_id))
        return decision

    def _append_audit(self, c: sqlite3.Connection, item: Item, at: str, reviewer: str, action: str,
                      label: str | None, comment: str, model_id: str | None, model_sha256: str | None,
                      shown: dict[str, Any]) -> Decision:
        """Inside a BEGIN IMMEDIATE transaction, so the chain head cannot move between read and insert."""
        last = c.execute("SELECT id, row_hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        prev = last["row_hash"] if last else GENESIS
        next_id = c.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM sqlite_sequence WHERE name = 'audit'"
                            ).fetchone()[0]
        row = {"id": next_id, "at": at, "reviewer": reviewer, "item_id": item.id, "item_sha256": item.sha256,
               "action": action, "label": label, "comment": comment, "model_id": model_id,
               "model_sha256": model_sha256, "shown": json.dumps(shown, sort_keys=True, ensure_ascii=False)}
        row["prev_hash"] = prev
        row["row_hash"] = _row_hash(prev, row)
        c.execute("INSERT INTO audit (id, at, reviewer, item_id, item_sha256, action, label, comment, model_id, "
                  "model_sha256, shown, prev_hash, row_hash) VALUES (:id, :at, :reviewer, :item_id, :item_sha256, "
                  ":action, :label, :comment, :model_id, :model_sha256, :shown, :prev_hash, :row_hash)", row)
        c.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (f"{next_id}:{row['row_hash']}",))
        return self._decision(row)

    @staticmethod
    def _decision(row: sqlite3.Row | dict[str, Any]) -> Decision:
        d = dict(row)
        d["shown"] = json.loads(d["shown"]) if d["shown"] else {}
        return Decision(**d)

    def audit(self, item_id: int | None = None, decisions_only: bool = False) -> list[Decision]:
        """Audit rows in order, for one item or all; `decisions_only` leaves out the screening rows."""
        sql, args = "SELECT * FROM audit", []
        where = []
        if item_id is not None:
            where.append("item_id = ?")
            args.append(item_id)
        if decisions_only:
            where.append("action != 'screen'")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [self._decision(r) for r in self._query(sql + " ORDER BY id", args)]

    def latest_decision(self, item_id: int) -> Decision | None:
        rows = self._query("SELECT * FROM audit WHERE item_id = ? AND action != 'screen' ORDER BY id DESC LIMIT 1",
                           (item_id,))
        return self._decision(rows[0]) if rows else None

    def verify_audit(self) -> AuditCheck:
        """Recompute the hash chain: an edited, deleted, inserted or reordered row, a missing append-only trigger or
        a chain head that does not match the last row is reported (one line each)."""
        problems: list[str] = []
        with self._lock:
            triggers = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            rows = self._conn.execute("SELECT * FROM audit ORDER BY id").fetchall()
            head = self._conn.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
        for name in _TRIGGERS:
            if name not in triggers:
                problems.append(f"the append-only trigger {name} is missing")
        prev, last_id = GENESIS, 0
        for r in rows:
            d = dict(r)
            if d["id"] != last_id + 1:
                problems.append(f"audit rows {last_id + 1}..{d['id'] - 1} are missing")
            if d["prev_hash"] != prev:
                problems.append(f"audit row {d['id']}: does not follow the previous row (chain broken)")
            if _row_hash(d["prev_hash"], d) != d["row_hash"]:
                problems.append(f"audit row {d['id']}: content does not match its hash (edited)")
            prev, last_id = d["row_hash"], d["id"]
        expected = f"{last_id}:{prev}"
        if head is None or head[0] != expected:
            problems.append(f"the audit chain head ({head[0] if head else 'missing'}) does not match the last row "
                            f"({expected}): rows were removed or added outside the worklist")
        return AuditCheck(not problems, len(rows), problems)
