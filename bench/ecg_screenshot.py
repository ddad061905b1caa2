"""Screenshots of the ECG review tab in the real main window at 1024×700 and 1400×900 (run under Xvfb:
`xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python bench/ecg_screenshot.py`).

The worklist holds the demo ECGs, two real report scans of the Khan set and real 12-lead LUDB records (one also cut
to a 2-lead strip), screened by the shipped model. A LUDB record is selected with the second opinion and the
uncertain flag shown (the heat map on). Where the engine does not yet fill the uncertainty fields, they are filled
here from the plug-in's own gate and second-opinion modules (printed as such). Writes
resources/screenshots/ecg-review-1024x700.png and ecg-review-1400x900.png."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from shots import ROOT, SHOTS, close, isolated_home, main_window, open_tab, pump, save

REAL = ROOT.parent / "shared" / "data" / "ecg-real"
LUDB = ("109", "13", "105", "11")      # two with infarction statements, two sinus-rhythm records
KHAN = ("myocardial_infarction", "normal")


class CompletingEngine:
    """The real engine; results it leaves without scope, uncertainty or a second opinion are completed from the
    plug-in's gate and second-opinion modules (what the engine is being extended to do)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.completed: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def screen(self, inp: Any, explain: bool = True) -> Any:
        res = self.engine.screen(inp, explain)
        if inp.record is None or res.second_opinion is not None or res.reasons:
            return res
        from plugins.ecg.gate import gate_record
        from plugins.ecg.opinion import second_opinion
        from plugins.ecg.types import CLASS_TITLES

        try:
            gate = gate_record(inp.record)
            op = second_opinion(inp.record, gate)
        except Exception as e:  # the modules are still being written: screenshot without the completion
            print(f"{Path(inp.source).name}: second opinion failed ({e.__class__.__name__}: {e})")
            return res
        res.second_opinion, res.scope = op, gate.scope if gate.scope in ("12-lead", "rhythm-only") else "12-lead"
        res.reasons = list(gate.reasons)
        top = max(res.probabilities.values())
        if top < 0.8:
            res.reasons.append(f"top class probability {top:.2f} is below 0.80")
        if op.label is not None and op.label != res.label:
            res.disagreement = (f"model: {CLASS_TITLES.get(res.label, res.label)}; measurements: "
                                f"{CLASS_TITLES.get(op.label, op.label)}"
                                + (f" ({op.findings[0]})" if op.findings else ""))
            res.reasons.append("the measurement-based second opinion disagrees")
        res.uncertain = bool(res.disagreement) or top < 0.8 or res.scope == "rhythm-only"
        self.completed.append(Path(inp.source).name)
        return res


def _inputs(tmp: Path) -> list[Path]:
    files: list[Path] = []
    for cls in KHAN:
        found = sorted((REAL / "khan" / cls).glob("*.jpg"))[:1]
        files += found
    for rec in LUDB:
        if (REAL / "ludb" / f"{rec}.hea").is_file():
            files.append(REAL / "ludb" / f"{rec}.hea")
    if files and (REAL / "ludb" / "11.hea").is_file():
        import wfdb

        r = wfdb.rdrecord(str(REAL / "ludb" / "11"))
        keep = [r.sig_name.index("ii"), r.sig_name.index("v1")] if "ii" in r.sig_name else [1, 6]
        strip = tmp / "strips"
        strip.mkdir()
        wfdb.wrsamp("ludb11-2lead", fs=r.fs, units=[r.units[i] for i in keep],
                    sig_name=[r.sig_name[i].upper() for i in keep], p_signal=r.p_signal[:, keep],
                    fmt=["16"] * len(keep), write_dir=str(strip))
        files.append(strip / "ludb11-2lead.hea")
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=str(SHOTS))
    ap.add_argument("--sizes", default="1024x700,1400x900")
    args = ap.parse_args()
    tmp = isolated_home("ecg-shot")  # fresh QSettings: a first run, demo ECGs loaded
    app, window = main_window(1400, 900)
    w = open_tab(window, "ecg")
    pump(until=lambda: w.worklist is not None and len(w.worklist) >= 4 and not w.jobs, what="the ECG tab")
    engine = CompletingEngine(w._io.engine)
    w._io.engine = engine
    extra = _inputs(tmp)
    if extra:
        w.open_files(extra)
        pump(until=lambda: not w.jobs)
    w.reviewer_edit.setText("Dr. Rossi")
    w.screen_all()
    pump(until=lambda: not w.jobs)
    if w.last_errors:
        print("screening errors: " + "; ".join(w.last_errors[:3]))
    items = w.worklist.items()
    if engine.completed:
        print("uncertainty fields completed from the gate / second-opinion modules for: " + ", ".join(engine.completed))
    # decisions on a few rows, so the decision and reviewer columns have content
    images = [it for it in items if it.kind == "image"]
    for it, action in zip(images[:3], ("confirm", "uncertain", "override"), strict=False):
        label = next(c for c in ("normal", "history_of_mi") if c != it.label) if action == "override" else None
        w.worklist.decide(it.id, "Dr. Bianchi", action, label)
    w.refresh()
    waves = [it for it in items if it.opinion is not None]
    target = next((it for it in waves if it.uncertain and it.disagreement and it.scope == "12-lead"),
                  next((it for it in waves if it.uncertain), waves[0] if waves else items[0]))
    w.select_item(target.id)
    pump(until=lambda: w.current_image is not None, timeout=30)
    w.heatmap_check.setChecked(True)
    out_dir = Path(args.out_dir)
    ok = True
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        window.resize(width, height)
        pump(1.0)
        w.table.setFocus()
        pump(0.3)
        out = out_dir / f"ecg-review-{width}x{height}.png"
        saved = save(window, out)
        ok &= saved
        got = window.size()
        print(f"{out}: {'written' if saved else 'FAILED'} (window {got.width()}×{got.height()}, "
              f"minimum {window.minimumSizeHint().width()}×{window.minimumSizeHint().height()})")
    print("selected: " + f"{Path(target.source).name} model={target.label} uncertain={target.uncertain} "
          f"scope={target.scope} opinion={(target.second_opinion or {}).get('label')} "
          f"disagreement={target.disagreement!r}")
    print("items: " + ", ".join(f"{Path(it.source).name}={it.label}{'⚠' if it.uncertain else ''}"
                                for it in w.worklist.items()))
    close(app, window)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
