"""Map free-text ECG diagnosis statements (WFDB header comments, a hospital's labelled records) to the four
screening classes or "other"; the rules are ordered and written down in `classify_statements`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

OTHER = "other"

# Each rule: (name, pattern). Patterns are matched case-insensitively against one statement at a time.
_STEMI = re.compile(r"\bstemi\b|st[- ]elevation (myocardial )?infarction|acute (myocardial )?infarction|"
                    r"\bacute mi\b|injury current", re.I)
_NSTEMI = re.compile(r"nstemi|non[- ]st", re.I)
_OLD_MI = re.compile(r"scar formation|\bscar\b|old (myocardial )?infarct|prior (myocardial )?infarct|"
                     r"history of (mi|myocardial)|previous (mi|myocardial)|\bold mi\b|q[- ]wave infarct", re.I)
_UNDEFINED = re.compile(r"undefined ischemia|ischemia/scar", re.I)
_PACED = re.compile(r"pacing|paced|pacemaker rhythm|\bstimulation\b", re.I)
_WANDERING = re.compile(r"wandering atrial pacemaker", re.I)
_ARRHYTHMIA = re.compile(r"atrial fibrillation|\bafib\b|\baf\b|atrial flutter|flutter|extrasystol|ectopic|"
                         r"premature (ventricular|atrial|beat|contraction)|\bpvcs?\b|\bpacs?\b|bigemin|trigemin|"
                         r"couplet|tachyarrhythmia|supraventricular tachycardia|\bsvt\b|ventricular tachycardia|"
                         r"junctional rhythm|idioventricular|escape (beat|rhythm)|wandering atrial pacemaker", re.I)
# findings outside the four classes (a record with one of them and nothing class-defining is "other")
_MAJOR_OTHER = re.compile(r"\bcomplete (left|right) bundle branch block|\bcomplete bundle branch block|"
                          r"incomplete left bundle branch block|\blbbb\b|\brbbb\b|hemiblock|fascicular block|"
                          r"av[- ]block|atrioventricular block|sinoatrial block|sinoatrial blockade|"
                          r"intra-?v[ea]ntricular conduction delay|intravintricular conduction delay|"
                          r"ventricular hypertrophy|ventricular overload|\blvh\b|\brvh\b|"
                          r"\bischemia\b|ischaemia|aberrant conduction|pre-?excitation|wpw|wolff|brugada|"
                          r"long qt|qt prolongation", re.I)
# findings that leave a sinus record "normal" for screening: axis, atrial enlargement/overload, incomplete RBBB,
# early repolarisation, non-specific repolarisation changes, sinus brady/tachycardia/arrhythmia
_MINOR = re.compile(r"electric axis|axis deviation|\baxis\b|atrial hypertrophy|atrial overload|atrial enlargement|"
                    r"incomplete right bundle branch block|early repolari[sz]ation|non-specific repolari[sz]ation|"
                    r"nonspecific (st|repolari[sz]ation)|sinus (rhythm|bradycardia|tachycardia|arrhythmia)|"
                    r"^rhythm:|normal (ecg|sinus)", re.I)


def classify_statements(statements: Iterable[str]) -> tuple[str, list[str]]:
    """The class of a record from its diagnosis statements, and the statements that decided it.

    Rules, first match wins:
      1. paced rhythm (atrial/ventricular/biventricular pacing) → "other": pacing hides the ST/Q criteria and
         the rhythm; it is none of the four classes.
      2. STEMI / acute or ST-elevation infarction → "myocardial_infarction" (an NSTEMI statement alone is not).
      3. scar / old or prior infarction → "history_of_mi" (LUDB's "Undefined ischemia/scar/supp.NSTEMI" is not:
         it does not say which).
      4. an arrhythmia — atrial fibrillation or flutter, atrial or ventricular extrasystoles / ectopic beats,
         wandering atrial pacemaker, SVT/VT, junctional or escape rhythms → "abnormal_heartbeat".
      5. a finding outside the four classes — bundle branch block other than incomplete RBBB, hemiblock, AV or
         sinoatrial block, intraventricular conduction delay, ventricular hypertrophy/overload, ischaemia
         (including "undefined ischemia/scar/NSTEMI"), aberrant conduction, pre-excitation → "other".
      6. otherwise, a sinus rhythm (including sinus brady-/tachycardia and sinus arrhythmia) whose other statements
         are all minor — electrical axis, atrial hypertrophy/overload, incomplete RBBB, early repolarisation,
         non-specific repolarisation changes → "normal".
      7. any statement not recognised at all, or no statement → "other" (never guess a class).
    """
    st = [" ".join(str(s).split()).strip(" .") for s in statements]
    st = [s for s in st if s]
    if not st:
        return OTHER, []
    hit = [s for s in st if _PACED.search(s) and not _WANDERING.search(s)]
    if hit:
        return OTHER, hit
    hit = [s for s in st if _STEMI.search(s) and not _UNDEFINED.search(s)
           and not (_NSTEMI.search(s) and not re.search(r"\bstemi\b", s, re.I))]
    if hit:
        return "myocardial_infarction", hit
    hit = [s for s in st if _OLD_MI.search(s) and not _UNDEFINED.search(s)]
    if hit:
        return "history_of_mi", hit
    hit = [s for s in st if _ARRHYTHMIA.search(s)]
    if hit:
        return "abnormal_heartbeat", hit
    hit = [s for s in st if _MAJOR_OTHER.search(s) or _UNDEFINED.search(s)]
    if hit:
        return OTHER, hit
    unknown = [s for s in st if not _MINOR.search(s)]
    if unknown:
        return OTHER, unknown
    if not any(re.search(r"sinus|normal (ecg|sinus)", s, re.I) for s in st):
        return OTHER, st
    return "normal", [s for s in st if re.search(r"sinus|normal", s, re.I)]


def header_statements(path: str | Path) -> list[str]:
    """The diagnosis statements of a WFDB header: its `#` comment lines, without `<age>`/`<sex>`-style fields."""
    p = Path(path)
    if p.suffix.lower() != ".hea":
        p = p.with_suffix(".hea")
    return statements_from_comments(line[1:] for line in p.read_text(errors="replace").splitlines()
                                    if line.startswith("#"))


def statements_from_comments(comments: Iterable[str]) -> list[str]:
    """Diagnosis statements from free-text comment lines (drops `<field>: value` demographics and empty lines)."""
    out = []
    for c in comments:
        s = str(c).strip().lstrip("#").strip()
        if not s or re.match(r"^<[^>]*>\s*:?", s):
            continue
        out.append(s)
    return out


def classify_header(path: str | Path) -> str:
    """The class of a WFDB record from its header's diagnosis comments (see `classify_statements`)."""
    return classify_statements(header_statements(path))[0]
