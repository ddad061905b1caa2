"""The bad-input corpus of the fuzz campaign: cases generated for every CLI command (options, readers, sidecars,
cards, job specs, recipes, output paths, hostile model folders), each with its promise (exit code; a refusal is
exit 2 with one stderr line). Deterministic: the same ids and inputs on every run."""

from __future__ import annotations

import json
import random
import struct
import zlib
from dataclasses import dataclass
from typing import Any

W, F = "{W}", "{F}"  # the case's own folder, the shared fixtures folder (valid inputs)


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # options readers sidecars cards specs recipes outputs security controls bit-flips commands
    argv: tuple[str, ...]
    files: tuple[tuple[str, Any], ...] = ()  # (name under {W}, bytes | ("fifo",) | ("dir",) | ("symlink", to) ...)
    outputs: tuple[str, ...] = ()  # names under {W} the command may create
    expect: int = 2
    also_ok: tuple[int, ...] = ()  # other exit codes that keep the promise (e.g. a negative seed may be accepted)
    not_words: tuple[str, ...] = ()  # words the refusal must not use (it must say what is actually wrong)
    child: bool = False  # run as a child process (inputs that could block the test process)
    long: bool = False  # only in the fuzz_long campaign


# file makers -----------------------------------------------------------------------------------------------
def png(w: int, h: int, pixels: bytes | None = None, color: int = 2, depth: int = 8) -> bytes:
    """A PNG whose IHDR says w x h; `pixels` (filtered scanlines) default to one black row, so a huge header
    costs nothing to write (a decompression bomb as far as the header goes)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    channels = {0: 1, 2: 3, 6: 4}[color]
    if pixels is None:
        pixels = b"\x00" + b"\x00" * (min(w, 4096) * channels * depth // 8)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(pixels)) + chunk(b"IEND", b"")


def png_image(w: int, h: int, value: int = 128, color: int = 2) -> bytes:
    channels = {0: 1, 2: 3}[color]
    rows = b"".join(b"\x00" + bytes([value]) * (w * channels) for _ in range(h))
    return png(w, h, rows, color)


def rand_bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def nested(depth: int) -> Any:
    d: Any = 1
    for _ in range(depth):
        d = {"a": d}
    return d


def nesting_depth_of(doc: dict[str, Any]) -> int:
    d, node = 0, doc.get("params")
    while isinstance(node, dict) and "a" in node:
        d, node = d + 1, node["a"]
    return d


def toml_nested(depth: int) -> str:
    return "[" + ".".join(["a"] * depth) + "]\nx = 1\n"


def toml_inline_nested(depth: int) -> str:
    return "x = " + "{a = " * depth + "1" + "}" * depth + "\n"


# valid documents the mutations start from ------------------------------------------------------------------
def tiny_spec(out: str = "{W}/run") -> dict[str, Any]:
    return {"kind": "train", "name": "tiny", "seed": 0, "out_dir": out, "params": {
        "model": "vit-micro",
        "model_overrides": {"depth": 1, "width": 32, "heads": 2, "num_outputs": 4, "img_size": 32},
        "data": {"entry": "plugins.demo.shapes:make_dataset", "seed": 1,
                 "params": {"n_train": 32, "n_val": 16, "size": 32}},
        "steps": 2, "batch_size": 8, "lr": 1e-3, "threads": 1}}


def toml_dumps(d: dict[str, Any]) -> str:
    import tomli_w

    return tomli_w.dumps(d)


SPEC_MUTATIONS: list[tuple[str, Any]] = [
    # (name, function(spec) -> spec or raw text)
    ("seed-str", lambda s: {**s, "seed": "x"}),
    ("seed-float", lambda s: {**s, "seed": 1.5}),
    ("seed-bool", lambda s: {**s, "seed": True}),
    ("seed-null", lambda s: {**s, "seed": None}),
    ("kind-int", lambda s: {**s, "kind": 5}),
    ("kind-empty", lambda s: {**s, "kind": ""}),
    ("kind-unknown", lambda s: {**s, "kind": "no-such-kind"}),
    ("kind-os-getcwd", lambda s: {**s, "kind": "os:getcwd"}),
    ("kind-os-system", lambda s: {**s, "kind": "os:system"}),
    ("kind-subprocess", lambda s: {**s, "kind": "subprocess:getoutput"}),
    ("kind-builtins-exec", lambda s: {**s, "kind": "builtins:exec"}),
    ("kind-app-unregistered", lambda s: {**s, "kind": "app.train.worker:main"}),
    ("kind-path", lambda s: {**s, "kind": "../../x:y"}),
    ("kind-list", lambda s: {**s, "kind": ["train"]}),
    ("name-list", lambda s: {**s, "name": []}),
    ("out-int", lambda s: {**s, "out_dir": 5}),
    ("resume-str", lambda s: {**s, "resume": "yes"}),
    ("unknown-top", lambda s: {**s, "colour": 1}),
    ("params-list", lambda s: {**s, "params": [1, 2]}),
    ("params-str", lambda s: {**s, "params": "steps=10"}),
    ("steps-str", lambda s: {**s, "params": {**s["params"], "steps": "10"}}),
    ("steps-neg", lambda s: {**s, "params": {**s["params"], "steps": -5, "epochs": 1}}),
    ("steps-float", lambda s: {**s, "params": {**s["params"], "steps": 2.5}}),
    ("lr-str", lambda s: {**s, "params": {**s["params"], "lr": "fast"}}),
    ("lr-zero", lambda s: {**s, "params": {**s["params"], "lr": 0}}),
    ("batch-neg", lambda s: {**s, "params": {**s["params"], "batch_size": -1}}),
    ("threads-str", lambda s: {**s, "params": {**s["params"], "threads": "2"}}),
    ("betas-short", lambda s: {**s, "params": {**s["params"], "betas": [2]}}),
    ("betas-str", lambda s: {**s, "params": {**s["params"], "betas": "0.9"}}),
    ("augment-bogus", lambda s: {**s, "params": {**s["params"], "augment": ["bogus"]}}),
    ("augment-str", lambda s: {**s, "params": {**s["params"], "augment": "hflip"}}),
    ("unknown-param", lambda s: {**s, "params": {**s["params"], "epochz": 3}}),
    ("model-unknown", lambda s: {**s, "params": {**s["params"], "model": "nope"}}),
    ("model-int", lambda s: {**s, "params": {**s["params"], "model": 3}}),
    ("overrides-list", lambda s: {**s, "params": {**s["params"], "model_overrides": [1]}}),
    ("overrides-bad", lambda s: {**s, "params": {**s["params"], "model_overrides": {"depth": "deep"}}}),
    ("task-bogus", lambda s: {**s, "params": {**s["params"], "task": "dreaming"}}),
    ("loss-bogus", lambda s: {**s, "params": {**s["params"], "loss": "hinge"}}),
    ("schedule-bogus", lambda s: {**s, "params": {**s["params"], "schedule": "zigzag"}}),
    ("data-list", lambda s: {**s, "params": {**s["params"], "data": [1]}}),
    ("data-entry-os", lambda s: {**s, "params": {**s["params"], "data": {"entry": "os:getcwd"}}}),
    ("data-entry-shutil", lambda s: {**s, "params": {**s["params"], "data": {"entry": "shutil:rmtree"}}}),
    ("data-entry-nocolon", lambda s: {**s, "params": {**s["params"], "data": {"entry": "plugins.demo.shapes"}}}),
    ("data-entry-int", lambda s: {**s, "params": {**s["params"], "data": {"entry": 7}}}),
    ("data-seed-str", lambda s: {**s, "params": {**s["params"], "data": {**s["params"]["data"], "seed": "1"}}}),
    ("data-params-list", lambda s: {**s, "params": {**s["params"], "data": {**s["params"]["data"], "params": [1]}}}),
    ("data-param-type", lambda s: {**s, "params": {**s["params"], "data": {
        **s["params"]["data"], "params": {"n_train": "many"}}}}),
    ("data-param-unknown", lambda s: {**s, "params": {**s["params"], "data": {
        **s["params"]["data"], "params": {"colour": 1}}}}),
    ("data-unknown-key", lambda s: {**s, "params": {**s["params"], "data": {**s["params"]["data"], "x": 1}}}),
    ("export-list", lambda s: {**s, "params": {**s["params"], "export": [1]}}),
    ("heldout-entry-os", lambda s: {**s, "params": {**s["params"], "export": {
        "heldout": {"entry": "os:getcwd", "seed": 5}}}}),
    ("heldout-seed-str", lambda s: {**s, "params": {**s["params"], "export": {"heldout": {"seed": "5"}}}}),
    ("nested-3000-params", lambda s: {**s, "params": nested(3000)}),
    ("nested-40-data", lambda s: {**s, "params": {**s["params"], "data": {**s["params"]["data"],
                                                                          "params": nested(40)}}}),
    ("wizard-params-list", lambda s: {**s, "kind": "app.train.wizard_job:run", "params": {"train": [1]}}),
    ("wizard-compress-str", lambda s: {**s, "kind": "app.train.wizard_job:run",
                                       "params": {"parent": "x", "compress": {"steps": "many"}}}),
    ("wizard-nothing", lambda s: {**s, "kind": "app.train.wizard_job:run", "params": {}}),
    ("wizard-init-bogus", lambda s: {**s, "kind": "app.train.wizard_job:run",
                                     "params": {"init": "elsewhere", "train": s["params"]}}),
    ("wizard-unknown", lambda s: {**s, "kind": "app.train.wizard_job:run", "params": {"colour": 1}}),
]

RAW_SPECS: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not-json", b"{not json"),
    ("json-list", b"[1, 2]"),
    ("json-string", b'"train"'),
    ("json-number", b"3"),
    ("json-null", b"null"),
    ("no-kind", b'{"seed": 1}'),
    ("binary", rand_bytes(1, 512)),
    ("utf16", '{"kind": "train"}'.encode("utf-16")),
    ("nested-3000-list", b"[" * 3000 + b"]" * 3000),
    ("nested-3000-obj", b'{"kind": "train", "params": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3001),
    ("nan-seed", b'{"kind": "train", "seed": NaN}'),
    ("huge-int", b'{"kind": "train", "seed": ' + b"9" * 5000 + b"}"),
    ("dup-keys", b'{"kind": "train", "kind": 5}'),
]

RAW_RECIPES: list[tuple[str, str]] = [
    ("empty", ""),
    ("not-toml", "kind = "),
    ("binary", "\x00\x01\x02 kind"),
    ("no-kind", "seed = 1\n"),
    ("nested-3000-tables", 'kind = "train"\n' + toml_nested(3000)),
    ("nested-3000-inline", 'kind = "train"\n' + toml_inline_nested(3000)),
    ("nested-40-tables", 'kind = "train"\n' + toml_nested(40)),
    ("params-array", 'kind = "train"\nparams = [1, 2]\n'),
    ("seed-date", 'kind = "train"\nseed = 1979-05-27\n'),
    ("seed-str", 'kind = "train"\nseed = "x"\n'),
    ("export-outdir-int", 'kind = "train"\n[params.export]\nout_dir = 5\n'),
    ("init-int", 'kind = "train"\n[params]\ninit = 5\n'),
    ("unknown-key", 'kind = "train"\ncolour = 1\n'),
]

def _model(c: dict, **kw: Any) -> dict:
    """The card with keys of its model artifact (the first) replaced."""
    return {**c, "artifacts": [{**c["artifacts"][0], **kw}, *c["artifacts"][1:]]}


def _side(c: dict, **kw: Any) -> dict:
    """The card with a required side artifact added (a tokenizer: sha256 of the model unless given)."""
    entry = {"role": "tokenizer", "sha256": c["artifacts"][0]["sha256"], "bytes": 10, **kw}
    return {**c, "artifacts": [*c["artifacts"], entry]}


CARD_MUTATIONS: list[tuple[str, Any]] = [
    ("id-int", lambda c: {**c, "id": 5}),
    ("id-path", lambda c: {**c, "id": "../../x"}),
    ("id-slash", lambda c: {**c, "id": "a/b"}),
    ("id-upper", lambda c: {**c, "id": "EVIL"}),
    ("id-empty", lambda c: {**c, "id": ""}),
    ("task-list", lambda c: {**c, "task": ["x"]}),
    ("version-table", lambda c: {**c, "version": {"a": 1}}),
    ("license-missing", lambda c: {k: v for k, v in c.items() if k != "license"}),
    ("description-int", lambda c: {**c, "description": 5}),
    ("model-str", lambda c: {**c, "model": "model.onnx"}),
    ("model-missing", lambda c: {k: v for k, v in c.items() if k != "artifacts"}),
    ("artifacts-str", lambda c: {**c, "artifacts": "model.onnx"}),
    ("artifacts-empty", lambda c: {**c, "artifacts": []}),
    ("bytes-str", lambda c: _model(c, bytes="854551")),
    ("bytes-neg", lambda c: _model(c, bytes=-1)),
    ("bytes-wrong", lambda c: _model(c, bytes=10)),
    ("bytes-missing", lambda c: {**c, "artifacts": [{k: v for k, v in c["artifacts"][0].items() if k != "bytes"}]}),
    ("sha-int", lambda c: _model(c, sha256=5)),
    ("sha-short", lambda c: _model(c, sha256="abc")),
    ("sha-wrong", lambda c: _model(c, sha256="0" * 64)),
    ("params-str", lambda c: _model(c, params="many")),
    ("opset-float", lambda c: _model(c, opset=1.5)),
    ("file-other", lambda c: _model(c, file="../../etc/passwd")),
    ("file-card", lambda c: _model(c, file="card.toml")),
    ("model-unknown-key", lambda c: _model(c, url="http://x")),
    ("model-optional", lambda c: _model(c, optional=True)),
    ("role-upper", lambda c: _model(c, role="Model")),
    ("role-none", lambda c: _model(c, role="tokenizer")),
    ("artifact-twice", lambda c: {**c, "artifacts": c["artifacts"] * 2}),
    ("side-missing", lambda c: _side(c, file="vocab.txt")),
    ("side-sha-wrong", lambda c: _side(c, file="golden.npz", sha256="0" * 64)),
    ("side-path", lambda c: _side(c, file="../model/model.onnx")),
    ("both-forms", lambda c: {**c, "model": {k: v for k, v in c["artifacts"][0].items() if k != "role"}}),
    ("inputs-str", lambda c: {**c, "inputs": "image"}),
    ("inputs-empty", lambda c: {**c, "inputs": []}),
    ("inputs-shape-str", lambda c: {**c, "inputs": [{**c["inputs"][0], "shape": "1x3"}]}),
    ("inputs-shape-neg", lambda c: {**c, "inputs": [{**c["inputs"][0], "shape": [1, 3, -64, 64]}]}),
    ("inputs-dtype", lambda c: {**c, "inputs": [{**c["inputs"][0], "dtype": "complex128"}]}),
    ("inputs-name-wrong", lambda c: {**c, "inputs": [{**c["inputs"][0], "name": "pixels"}]}),
    ("inputs-unknown-key", lambda c: {**c, "inputs": [{**c["inputs"][0], "layout": "NCHW"}]}),
    ("outputs-int", lambda c: {**c, "outputs": 3}),
    ("labels-str", lambda c: {**c, "labels": "circle"}),
    ("labels-ints", lambda c: {**c, "labels": [1, 2, 3, 4]}),
    ("arch-list", lambda c: {**c, "arch": [1]}),
    ("preprocess-list", lambda c: {**c, "preprocess": [1]}),
    ("size-str", lambda c: {**c, "preprocess": {**c["preprocess"], "size": "64"}}),
    ("size-zero", lambda c: {**c, "preprocess": {**c["preprocess"], "size": 0}}),
    ("size-huge", lambda c: {**c, "preprocess": {**c["preprocess"], "size": 10 ** 9}}),
    ("size-triple", lambda c: {**c, "preprocess": {**c["preprocess"], "size": [1, 2, 3]}}),
    ("mean-str", lambda c: {**c, "preprocess": {**c["preprocess"], "mean": "0.5"}}),
    ("std-zero", lambda c: {**c, "preprocess": {**c["preprocess"], "std": 0}}),
    ("metrics-ints", lambda c: {**c, "metrics": [1, 2]}),
    ("metrics-noname", lambda c: {**c, "metrics": [{"value": 1}]}),
    ("optics-str", lambda c: {**c, "optics": "offaxis"}),
    ("nested-40", lambda c: {**c, "extra": nested(40)}),
]


def _replace(f: Any, name: str, data: Any = None, **kw: Any) -> None:
    del f[name]
    f.create_dataset(name, data=data, **kw)


def _declared_only(f: Any) -> None:  # 10^6 frames of 4096^2 declared (32 TB), none stored (KBs on disk)
    del f["holograms"]
    f.create_dataset("holograms", shape=(10 ** 6, 4096, 4096), dtype="uint16", chunks=(1, 256, 256))
    _replace(f, "z_m", np_full((10 ** 6,), 1e-5))
    del f["background"]


def _dangling(f: Any) -> None:
    import h5py

    del f["holograms"]
    f["holograms"] = h5py.SoftLink("/nowhere")


H5_MUTATIONS: list[tuple[str, Any]] = [  # applied to a copy of the fixture stack with h5py
    ("wl-complex", lambda f: f.attrs.__setitem__("wavelength_m", 6.66e-7 + 1e-7j)),
    ("wl-array", lambda f: f.attrs.__setitem__("wavelength_m", [6.66e-7, 5e-7])),
    ("wl-string", lambda f: f.attrs.__setitem__("wavelength_m", "abc")),
    ("wl-zero", lambda f: f.attrs.__setitem__("wavelength_m", 0.0)),
    ("wl-nan", lambda f: f.attrs.__setitem__("wavelength_m", float("nan"))),
    ("px-tiny", lambda f: f.attrs.__setitem__("pixel_size_m", 1e-30)),
    ("px-string", lambda f: f.attrs.__setitem__("pixel_size_m", "x")),
    ("na-big", lambda f: f.attrs.__setitem__("na", 5.0)),
    ("mode-bogus", lambda f: f.attrs.__setitem__("mode", "sideways")),
    ("zr-scalar", lambda f: f.attrs.__setitem__("z_range_m", 1e-5)),
    ("zr-three", lambda f: f.attrs.__setitem__("z_range_m", [1e-5, 2e-5, 3e-5])),
    ("carrier-1", lambda f: f.attrs.__setitem__("carrier", [0.1])),
    ("holo-dangling", _dangling),
    ("holo-declared-1e6", _declared_only),
    ("holo-complex", lambda f: _replace(f, "holograms", np_full((2, 64, 64), 1 + 1j))),
    ("holo-1d", lambda f: _replace(f, "holograms", np_full((64,), 1.0))),
    ("holo-1e300", lambda f: _replace(f, "holograms", np_ramp((2, 64, 64), 1e299, 1e300))),
    ("holo-nan", lambda f: _replace(f, "holograms", np_full((2, 64, 64), float("nan")))),
    ("holo-empty", lambda f: _replace(f, "holograms", np_full((0, 64, 64), 1.0))),
    ("zm-string", lambda f: _replace(f, "z_m", "deep")),
    ("zm-short", lambda f: _replace(f, "z_m", np_full((1,), 1e-5))),
]


def np_ramp(shape: tuple[int, ...], lo: float, hi: float) -> Any:
    import numpy as np

    return np.linspace(lo, hi, int(np.prod(shape))).reshape(shape)


def np_full(shape: tuple[int, ...], value: Any) -> Any:
    import numpy as np

    return np.full(shape, value)


# the corpus ------------------------------------------------------------------------------------------------
HOSTILE_NUMBERS = ("nan", "inf", "-inf", "0", "-1", "1e400", "abc", "", "0x10", "1e-30", "-1.5e-5", "1e30")
HOSTILE_INTS = ("0", "-1", "-100", "nan", "1e3", "abc", "", "2.5", "0x10")


def _options() -> list[Case]:
    cases = []
    optics_cmds = {
        "autofocus": ("holo", "autofocus", f"{F}/ok.h5", "--method", "sweep"),
        "reconstruct": ("holo", "reconstruct", f"{F}/ok.h5", "--z", "1e-5", "--out", f"{W}/r.h5"),
    }
    for cname, base in optics_cmds.items():
        for opt in ("--wavelength", "--pixel", "--na"):
            for i, v in enumerate(HOSTILE_NUMBERS):
                if v == "-1.5e-5" and opt == "--na":
                    continue
                cases.append(Case(f"opt-{cname}{opt}-{i}", "options", (*base, opt, v), outputs=("r.h5",)))
        for i, (lo, hi) in enumerate((("nan", "1e-5"), ("1e-5", "-1e-5"), ("-inf", "inf"), ("0", "0"),
                                      ("-5", "5"), ("abc", "1"), ("1e400", "2e400"))):
            cases.append(Case(f"opt-{cname}-zrange-{i}", "options", (*base, "--z-range", lo, hi), outputs=("r.h5",)))
    for i, v in enumerate(HOSTILE_NUMBERS):  # z = 0 (in focus), 1e-30 and -1.5e-5 m are good defocus values
        cases.append(Case(f"opt-reconstruct-z-{i}", "options",
                          ("holo", "reconstruct", f"{F}/ok.h5", "--z", v, "--out", f"{W}/r.h5"), outputs=("r.h5",),
                          expect=0 if v in ("0", "1e-30", "-1.5e-5") else 2))
    for i, v in enumerate(("-1", "2", "99", "abc", "nan")):
        cases.append(Case(f"opt-reconstruct-frame-{i}", "options",
                          ("holo", "reconstruct", f"{F}/ok.h5", "--z", "1e-5", "--frame", v, "--out", f"{W}/r.h5"),
                          outputs=("r.h5",)))
    for opt, base in (("--n", ("--size", "64")), ("--size", ("--n", "2")), ("--seed", ("--n", "2", "--size", "64"))):
        for i, v in enumerate(HOSTILE_INTS):
            if opt == "--seed" and v in ("0",):
                continue
            cases.append(Case(f"opt-simulate{opt}-{i}", "options",
                              ("holo", "simulate", "--out", f"{W}/s.h5", *base, opt, v), outputs=("s.h5",)))
    for opt, base in (("--size", ("--frames", "2")), ("--frames", ("--size", "64"))):
        for i, v in enumerate(HOSTILE_INTS):
            cases.append(Case(f"opt-bench{opt}-{i}", "options", ("holo", "bench", "--method", "manual", *base, opt, v)))
    for i, v in enumerate(("bogus", "../../x", "/etc", "")):
        cases.append(Case(f"opt-simulate-preset-{i}", "options",
                          ("holo", "simulate", "--out", f"{W}/s.h5", "--n", "2", "--size", "64", "--preset", v),
                          outputs=("s.h5",)))
        cases.append(Case(f"opt-simulate-kinds-{i}", "options",
                          ("holo", "simulate", "--out", f"{W}/s.h5", "--n", "2", "--size", "64", "--kinds", v),
                          outputs=("s.h5",)))
    for i, v in enumerate(("-1", "abc", "1e9x")):
        cases.append(Case(f"opt-calibrate-steps-{i}", "options",
                          ("holo", "calibrate", f"{W}/missing.h5", "--out", f"{W}/cal", "--steps", v)))
    for i, v in enumerate(HOSTILE_NUMBERS):
        cases.append(Case(f"opt-ecg-render-dpi-{i}", "options",
                          ("ecg", "render", f"{F}/rec.hea", "--out", f"{W}/r.png", "--dpi", v), outputs=("r.png",)))
    for i, v in enumerate(("bogus", "3x5", "", "12x1x")):
        cases.append(Case(f"opt-ecg-render-layout-{i}", "options",
                          ("ecg", "render", f"{F}/rec.hea", "--out", f"{W}/r.png", "--layout", v), outputs=("r.png",)))
        cases.append(Case(f"opt-ecg-render-grid-{i}", "options",
                          ("ecg", "render", f"{F}/rec.hea", "--out", f"{W}/r.png", "--grid", v), outputs=("r.png",)))
    for i, v in enumerate(HOSTILE_INTS):
        seed_ok = {"0": (0, ()), "-1": (2, (0,)), "-100": (2, (0,))}.get(v, (2, ()))
        cases.append(Case(f"opt-ecg-render-seed-{i}", "options",
                          ("ecg", "render", f"{F}/rec.hea", "--out", f"{W}/r.png", "--seed", v), expect=seed_ok[0],
                          also_ok=seed_ok[1], outputs=("r.png",)))
        cases.append(Case(f"opt-ecg-screen-batch-{i}", "options", ("ecg", "screen", f"{F}/ecg.png", "--batch", v)))
        cases.append(Case(f"opt-ecg-simulate-seed-{i}", "options",
                          ("ecg", "simulate", "--label", "normal", "--out", f"{W}/e", "--seed", v),
                          outputs=("e.hea", "e.dat"), expect=seed_ok[0], also_ok=seed_ok[1]))
    for i, v in enumerate(("bogus", "NORMAL", "")):
        cases.append(Case(f"opt-ecg-simulate-label-{i}", "options",
                          ("ecg", "simulate", "--label", v, "--out", f"{W}/e")))
    for i, v in enumerate(("bogus", "../../models/demo-shapes-vit", "", "/etc", f"{W}/missing")):
        cases.append(Case(f"opt-demo-model-{i}", "options", ("demo", "classify", f"{F}/ok.png", "--model", v)))
        cases.append(Case(f"opt-ecg-model-{i}", "options", ("ecg", "screen", f"{F}/ecg.png", "--model", v)))
        cases.append(Case(f"opt-holo-model-{i}", "options",
                          ("holo", "autofocus", f"{F}/ok.h5", "--method", "vit", "--model", v)))
    for opt in ("--steps", "--batch-size", "--lr", "--calib-samples", "--quant-iters", "--threads",
                "--reparam-depth", "--latency-runs"):
        for i, v in enumerate(("-1", "nan", "abc")):
            cases.append(Case(f"opt-compress{opt}-{i}", "options",
                              ("compress", "--model", "demo-shapes-vit", "--out", f"{W}/c", opt, v)))
    for opt in ("--topk", "--epochs", "--limit"):
        for i, v in enumerate(("-1", "abc")):
            cases.append(Case(f"opt-logits{opt}-{i}", "options",
                              ("logits", "check", "--model", "demo-shapes-vit", "--store", f"{W}/st", opt, v)))
    for i, v in enumerate(("0", "-1", "abc")):
        cases.append(Case(f"opt-train-nproc-{i}", "options", ("train", f"{F}/recipe.toml", "--nproc", v,
                                                             "--out", f"{W}/run")))
    for i, argv in enumerate((("no-such-command",), ("holo",), ("holo", "nope"), ("models", "delete"),
                              ("demo", "classify"), ("ecg", "deid", "a.dcm"), ("--bogus",), ("holo", "autofocus"),
                              ("train",), ("worker",), ("worker", "a", "b"), ("export", "x"))):
        cases.append(Case(f"opt-usage-{i}", "options", argv))
    return cases


def _readers() -> list[Case]:
    cases = []
    contents = {
        "empty": b"",
        "random": rand_bytes(2, 2048),
        "text": b"hello, this is not an image\n" * 10,
        "png-truncated": png_image(64, 64)[:60],
        "png-badcrc": png_image(16, 16)[:-20] + b"\x00" * 20,
        "png-bomb": png(20000, 20000),
        "png-zero": png(0, 0),
        "png-1x1": png_image(1, 1),
        "png-wide": png(1_000_000, 1),
        "png-16bit-huge": png(12000, 12000, depth=16),
        "jpeg-header-only": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        "tiff-header-only": b"II*\x00\x08\x00\x00\x00",
        "hdf5-signature": b"\x89HDF\r\n\x1a\n" + b"\x00" * 200,
        "zip-bytes": b"PK\x03\x04" + rand_bytes(3, 300),
    }
    targets = {
        "demo": (("demo", "classify"), (".png", ".jpg", ".tif")),
        "ecg-screen": (("ecg", "screen"), (".png", ".jpg", ".dcm")),
        "holo-af": (("holo", "autofocus"), (".png", ".tif", ".h5", ".avi")),
        "holo-rec": (("holo", "reconstruct"), (".h5", ".png")),
    }
    for tname, (cmd, suffixes) in targets.items():
        for cname, data in contents.items():
            for suffix in suffixes:
                if cname.startswith("png") and suffix not in (".png", ".tif", ".jpg"):
                    continue
                name = f"in{suffix}"
                extra = ("--z", "1e-5", "--out", f"{W}/r.h5") if tname == "holo-rec" else ()
                if tname == "holo-af":
                    extra = ("--method", "sweep", "--preset", "dhm-offaxis-10x")
                cases.append(Case(f"read-{tname}-{cname}{suffix.replace('.', '-')}", "readers",
                                  (*cmd, f"{W}/{name}", *extra), files=((name, data),), outputs=("r.h5",)))
    for tname, (cmd, _) in targets.items():
        extra = ("--z", "1e-5", "--out", f"{W}/r.h5") if tname == "holo-rec" else ()
        for cname, files, arg in (
            ("missing", (), f"{W}/missing.png"),
            ("dir-named-png", (("x.png", ("dir",)),), f"{W}/x.png"),
            ("fifo-png", (("f.png", ("fifo",)),), f"{W}/f.png"),
            ("fifo-h5", (("f.h5", ("fifo",)),), f"{W}/f.h5"),
            ("symlink-loop", (("loop.png", ("symlink", "{W}/loop.png")),), f"{W}/loop.png"),
            ("dangling-link", (("d.png", ("symlink", "{W}/nowhere.png")),), f"{W}/d.png"),
            ("no-suffix", (("noext", png_image(8, 8)),), f"{W}/noext"),
            ("empty-dir", (("folder", ("dir",)),), f"{W}/folder"),
        ):
            fifo = cname.startswith("fifo")  # a FIFO blocks a reader that opens it: a child process, with a timeout
            cases.append(Case(f"read-{tname}-{cname}", "readers", (*cmd, arg, *extra), files=files,
                              outputs=("r.h5",), child=fifo, long=fifo and tname != "demo",
                              not_words=("unsupported",) if cname == "fifo-h5" and tname.startswith("holo") else ()))
    # ECG records
    hea_ok = "rec 12 500 5000\n" + "".join(f"rec.dat 16 200 16 0 0 0 0 {lead}\n" for lead in (
        "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"))
    for cname, hea, dat in (
        ("hea-empty", "", None), ("hea-garbage", "\x00\x01 garbage", None),
        ("hea-neg-fs", hea_ok.replace(" 500 ", " -500 "), ("copy", "{F}/rec.dat")),
        ("hea-zero-fs", hea_ok.replace(" 500 ", " 0 "), ("copy", "{F}/rec.dat")),
        ("hea-nan-fs", hea_ok.replace(" 500 ", " nan "), ("copy", "{F}/rec.dat")),
        ("hea-no-dat", hea_ok, None), ("hea-short-dat", hea_ok, b"\x00" * 100),
        ("hea-long-dat", hea_ok, b"\x00" * (2 * 12 * 5000 * 2)),
        ("hea-huge-len", hea_ok.replace(" 5000\n", " 999999999999\n", 1), ("copy", "{F}/rec.dat")),
        ("hea-1-lead", "rec 1 500 5000\nrec.dat 16 200 16 0 0 0 0 I\n", ("copy", "{F}/rec.dat")),
    ):
        files = [("rec.hea", hea.encode())] + ([("rec.dat", dat)] if dat is not None else [])
        cases.append(Case(f"read-ecg-render-{cname}", "readers",
                          ("ecg", "render", f"{W}/rec.hea", "--out", f"{W}/r.png"), files=tuple(files),
                          outputs=("r.png",)))
        cases.append(Case(f"read-ecg-screen-{cname}", "readers", ("ecg", "screen", f"{W}/rec.hea"),
                          files=tuple(files)))
    for cname, data in (("empty", b""), ("random", rand_bytes(4, 1024)), ("preamble-only", b"\x00" * 128 + b"DICM")):
        cases.append(Case(f"read-ecg-deid-{cname}", "readers", ("ecg", "deid", f"{W}/in.dcm", f"{W}/out.dcm"),
                          files=(("in.dcm", data),), outputs=("out.dcm",)))
        cases.append(Case(f"read-ecg-render-dcm-{cname}", "readers", ("ecg", "render", f"{W}/in.dcm", "--out",
                                                                      f"{W}/r.png"), files=(("in.dcm", data),),
                          outputs=("r.png",)))
    # ECG images too small or empty to hold an ECG
    for cname, data in (("black-3x3", png_image(3, 3, 0)), ("black-256", png_image(256, 256, 0)),
                        ("white-256", png_image(256, 256, 255)), ("gray-1px-high", png_image(800, 1, 128))):
        cases.append(Case(f"read-ecg-screen-{cname}", "readers", ("ecg", "screen", f"{W}/x.png"),
                          files=(("x.png", data),)))
    # batches: one good file and one bad: the good one is reported, the bad one listed, exit 2
    # (exit 1: some inputs failed; one stderr line for the bad one)
    cases.append(Case("read-ecg-screen-batch-mixed", "readers", ("ecg", "screen", f"{F}/ecg.png", f"{W}/bad.png"),
                      files=(("bad.png", png_image(1, 1)),), expect=1))
    cases.append(Case("read-demo-batch-mixed", "readers", ("demo", "classify", f"{F}/ok.png", f"{W}/bad.png"),
                      files=(("bad.png", b"not a png"),), expect=1))
    return cases


def _sidecars() -> list[Case]:
    cases = []
    values = {
        "wl-str": {"wavelength_m": "abc"}, "wl-list": {"wavelength_m": [1, 2]}, "wl-neg": {"wavelength_m": -6e-7},
        "wl-zero": {"wavelength_m": 0}, "wl-huge": {"wavelength_m": 1e300}, "wl-null": {"wavelength_m": None},
        "px-str": {"pixel_size_m": "x"}, "px-tiny": {"pixel_size_m": 1e-30}, "px-neg": {"pixel_size_m": -5e-7},
        "na-big": {"na": 5}, "na-str": {"na": "high"}, "mode-bogus": {"mode": "sideways"}, "mode-int": {"mode": 1},
        "zr-scalar": {"z_range_m": 1e-5}, "zr-3": {"z_range_m": [1, 2, 3]}, "zr-rev": {"z_range_m": [1e-5, -1e-5]},
        "zr-str": {"z_range_m": "wide"}, "bg-missing": {"background": "nowhere.png"},
        "bg-abs": {"background": "/etc/hostname"}, "bg-int": {"background": 5},
        "zm-str": {"z_m": "deep"}, "zm-nan": {"z_m": [float("nan")]}, "zm-nested": {"z_m": [[1, [2]]]},
    }
    base = {"wavelength_m": 6.66e-7, "pixel_size_m": 5e-7, "mode": "offaxis", "na": 0.25}
    for name, change in values.items():
        doc = json.dumps({**base, **change}).encode()
        cases.append(Case(f"side-{name}", "sidecars", ("holo", "autofocus", f"{W}/h.png", "--method", "sweep"),
                          files=(("h.png", ("copy", "{F}/holo.png")), ("h.png.json", doc))))
    for name, raw in (("not-json", b"{"), ("list", b"[1]"), ("binary", rand_bytes(5, 200)),
                      ("nested", b'{"a": ' * 3000 + b"1" + b"}" * 3000), ("fifo", ("fifo",))):
        cases.append(Case(f"side-raw-{name}", "sidecars", ("holo", "autofocus", f"{W}/h.png", "--method", "sweep"),
                          files=(("h.png", ("copy", "{F}/holo.png")), ("h.png.json", raw)), child=name == "fifo",
                          long=name == "fifo"))
    return cases


def _hdf5() -> list[Case]:
    cases = []
    for name, _ in H5_MUTATIONS:
        files = (("s.h5", ("h5", name)),)
        intact = ("corrupt",) if name in ("holo-dangling", "zm-string", "wl-string") else ()  # an intact file
        cases.append(Case(f"h5-autofocus-{name}", "readers", ("holo", "autofocus", f"{W}/s.h5", "--method", "sweep"),
                          files=files, not_words=intact))
        cases.append(Case(f"h5-reconstruct-{name}", "readers",
                          ("holo", "reconstruct", f"{W}/s.h5", "--z", "1e-5", "--out", f"{W}/r.h5"), files=files,
                          outputs=("r.h5",), not_words=intact))
    return cases


def _cards() -> list[Case]:
    cases = []
    for name, _ in CARD_MUTATIONS:
        files = (("m", ("card", name)),)
        cases.append(Case(f"card-install-{name}", "cards", ("models", "install", f"{W}/m"), files=files))
        cases.append(Case(f"card-demo-{name}", "cards", ("demo", "classify", f"{F}/ok.png", "--model", f"{W}/m"),
                          files=files))
    for name, text in (("not-toml", b"id = "), ("binary", rand_bytes(6, 300)), ("empty", b""),
                       ("nested-3000", toml_nested(3000).encode()), ("inline-3000", toml_inline_nested(3000).encode()),
                       ("utf16", 'id = "x"'.encode("utf-16")), ("huge", b"# " + b"x" * (2 << 20))):
        files = (("m", ("copy", "{F}/model")), ("m/card.toml", text))
        cases.append(Case(f"card-install-raw-{name}", "cards", ("models", "install", f"{W}/m"), files=files))
        cases.append(Case(f"card-demo-raw-{name}", "cards", ("demo", "classify", f"{F}/ok.png", "--model", f"{W}/m"),
                          files=files))
    # broken models inside the user's zoo: verify and selftest must fail with one line; list marks them
    for name, files in (
        ("tampered", (("h/models/demo-bad", ("copy", "{F}/model")), ("h/models/demo-bad/model.onnx", ("tamper",)))),
        ("truncated", (("h/models/demo-bad", ("copy", "{F}/model")), ("h/models/demo-bad/model.onnx", ("truncate",)))),
        ("no-onnx", (("h/models/demo-bad", ("copy", "{F}/model")), ("h/models/demo-bad/model.onnx", ("remove",)))),
        ("bad-card", (("h/models/demo-bad", ("copy", "{F}/model")), ("h/models/demo-bad/card.toml", b"id = "))),
        ("no-golden", (("h/models/demo-bad", ("copy", "{F}/model")), ("h/models/demo-bad/golden.npz", ("remove",)))),
        ("bad-golden", (("h/models/demo-bad", ("copy", "{F}/model")), ("h/models/demo-bad/golden.npz", b"PK"))),
    ):
        for cmd in (("models", "verify"), ("selftest",)):
            if name in ("no-golden", "bad-golden") and cmd == ("models", "verify"):
                continue  # golden files are the self-test's business
            cases.append(Case(f"zoo-{'-'.join(cmd)}-{name}", "cards", ("--home", f"{W}/h", *cmd), files=files))
        if name in ("tampered", "truncated"):
            cases.append(Case(f"zoo-demo-{name}", "cards", ("--home", f"{W}/h", "demo", "classify", f"{F}/ok.png",
                                                            "--model", "demo-bad"), files=files))
    # a tampered model asked for by folder, or installed over the built-in: an error, never a silent substitute
    demo_dir = (("m", ("copy", "{F}/model")), ("m/model.onnx", ("tamper",)))
    holo_zoo = (("h/models/holo", ("copy", "{F}/holo-model")), ("h/models/holo/model.onnx", ("tamper",)))
    holo_dir = (("hm", ("copy", "{F}/holo-model")), ("hm/model.onnx", ("tamper",)))
    cases += [
        Case("zoo-demo-dir-tampered", "cards", ("demo", "classify", f"{F}/ok.png", "--model", f"{W}/m"),
             files=demo_dir),
        Case("zoo-holo-bench-tampered", "cards", ("--home", f"{W}/h", "holo", "bench", "--method", "vit", "--frames",
                                                  "2", "--size", "64"), files=holo_zoo),
        Case("zoo-holo-autofocus-tampered", "cards", ("--home", f"{W}/h", "holo", "autofocus", f"{F}/ok.h5",
                                                      "--method", "vit"), files=holo_zoo),
        Case("zoo-holo-autofocus-dir-tampered", "cards", ("holo", "autofocus", f"{F}/ok.h5", "--method", "vit",
                                                          "--model", f"{W}/hm"), files=holo_dir),
        Case("zoo-models-list-tampered", "cards", ("--home", f"{W}/h", "models", "list"), files=holo_zoo, expect=0),
    ]
    return cases


def _security() -> list[Case]:
    cases = []
    model = ("m", ("copy", "{F}/model"))
    for name, extra in (
        ("symlink-hostname", (("m/extra.txt", ("symlink", "/etc/hostname")),)),
        ("symlink-card", (("m/card.toml", ("symlink", "{F}/model/card.toml")),)),
        ("symlink-onnx", (("m/model.onnx", ("symlink", "{F}/model/model.onnx")),)),
        ("hardlink", (("m/extra.bin", ("hardlink", "{F}/model/golden.npz")),)),
        ("fifo-card", (("m/card.toml", ("fifo",)),)),
        ("fifo-extra", (("m/pipe", ("fifo",)),)),
        ("symlink-dir", (("m/sub", ("symlink", "/etc")),)),
        ("onnx-data-sidecar", (("m/model.onnx.data", b"\x00" * 16),)),
    ):
        cases.append(Case(f"sec-install-{name}", "security", ("models", "install", f"{W}/m"), files=(model, *extra),
                          child=name.startswith("fifo")))
    cases.append(Case("sec-install-folder-is-link", "security", ("models", "install", f"{W}/link"),
                      files=(("link", ("symlink", "{F}/model")),)))
    for i, arg in enumerate(("../../x", "/", "/etc", f"{W}/file.txt")):
        cases.append(Case(f"sec-install-path-{i}", "security", ("models", "install", arg),
                          files=(("file.txt", b"x"),)))
    return cases


def _specs_and_recipes() -> list[Case]:
    cases = []
    for name, mutate in SPEC_MUTATIONS:
        doc = mutate(tiny_spec())
        try:
            raw = json.dumps(doc).encode()
        except RecursionError:  # too deep for the json module itself: spliced in as text
            depth = nesting_depth_of(doc)
            raw = json.dumps({**doc, "params": "@@"}).encode().replace(
                b'"@@"', b'{"a": ' * depth + b"1" + b"}" * depth)
        cases.append(Case(f"spec-{name}", "specs", ("worker", f"{W}/spec.json"), files=(("spec.json", raw),)))
        try:
            text = toml_dumps(doc)
        except (TypeError, ValueError, RecursionError):  # TOML cannot say it (null, a top-level list, 3000 deep)
            continue
        cases.append(Case(f"recipe-{name}", "recipes", ("train", f"{W}/recipe.toml"),
                          files=(("recipe.toml", text.encode()),)))
    for name, raw in RAW_SPECS:
        cases.append(Case(f"spec-raw-{name}", "specs", ("worker", f"{W}/spec.json"), files=(("spec.json", raw),)))
    for name, text in RAW_RECIPES:
        cases.append(Case(f"recipe-raw-{name}", "recipes", ("train", f"{W}/r.toml"),
                          files=(("r.toml", text.encode()),)))
    for name, files, arg in (("dir", (("spec.json", ("dir",)),), f"{W}/spec.json"),
                             ("fifo", (("spec.json", ("fifo",)),), f"{W}/spec.json")):
        cases.append(Case(f"spec-file-{name}", "specs", ("worker", arg), files=files, child=name == "fifo"))
        cases.append(Case(f"recipe-file-{name}", "recipes", ("train", arg), files=files, child=name == "fifo"))
    return cases


def _outputs() -> list[Case]:
    cases = []
    blocker = (("blocker", b"a regular file"),)
    bad_outs = {"under-file": f"{W}/blocker/x", "under-proc": "/proc/vitascope-fuzz/x", "is-dir": f"{W}/adir",
                "empty": ""}
    for oname, out in bad_outs.items():
        files = blocker + ((("adir", ("dir",)),) if oname == "is-dir" else ())
        for cname, argv, suffix in (
            ("holo-simulate", ("holo", "simulate", "--n", "2", "--size", "64", "--out"), ".h5"),
            ("holo-reconstruct", ("holo", "reconstruct", f"{F}/ok.h5", "--z", "1e-5", "--out"), ".h5"),
            ("holo-reconstruct-png", ("holo", "reconstruct", f"{F}/ok.h5", "--z", "1e-5", "--out"), ".png"),
            ("holo-calibrate", ("holo", "calibrate", f"{F}/ok.h5", "--steps", "1", "--out"), ""),
            ("ecg-render", ("ecg", "render", f"{F}/rec.hea", "--out"), ".png"),
            ("ecg-simulate", ("ecg", "simulate", "--label", "normal", "--out"), ""),
            ("ecg-deid", ("ecg", "deid", f"{W}/in.dcm"), ".dcm"),
            ("train", ("train", f"{F}/recipe.toml", "--out"), ""),
            ("export", ("export", f"{W}/ckpt.pt", "--out"), ""),
            ("compress", ("compress", "--model", "demo-shapes-vit", "--out"), ""),
            ("logits", ("logits", "save", "--model", "demo-shapes-vit", "--store"), ""),
        ):
            if oname == "is-dir" and not suffix:
                continue  # a folder output may be an existing folder
            target = out + suffix if out and oname != "is-dir" else out
            extra = (("in.dcm", b"\x00" * 132),) if cname == "ecg-deid" else ()
            cases.append(Case(f"out-{cname}-{oname}", "outputs", (*argv, target), files=files + extra))
    for oname, out in (("under-file", f"{W}/blocker/s.png"), ("under-proc", "/proc/vitascope-fuzz/s.png"),
                       ("is-dir", f"{W}/adir")):
        cases.append(Case(f"out-gui-screenshot-{oname}", "outputs", ("gui", "--smoke", "--screenshot", out),
                          files=(("blocker", b"x"), ("adir", ("dir",)))))
    for suffix in (".txt", ".jpg2", ""):
        cases.append(Case(f"out-ecg-render-suffix{suffix or '-none'}", "outputs",
                          ("ecg", "render", f"{F}/rec.hea", "--out", f"{W}/r{suffix}"), outputs=(f"r{suffix}",)))
        cases.append(Case(f"out-holo-reconstruct-suffix{suffix or '-none'}", "outputs",
                          ("holo", "reconstruct", f"{F}/ok.h5", "--z", "1e-5", "--out", f"{W}/r{suffix}"),
                          outputs=(f"r{suffix}",)))
    return cases


def _controls() -> list[Case]:
    """Good inputs that must work (exit 0): the scientific-notation negatives among them."""
    return [
        Case("ok-reconstruct-neg-sci-z", "controls",
             ("holo", "reconstruct", f"{F}/ok.h5", "--z", "-1.5e-5", "--out", f"{W}/r.h5"), outputs=("r.h5",),
             expect=0),
        Case("ok-autofocus-neg-sci-zrange", "controls",
             ("holo", "autofocus", f"{F}/ok.h5", "--method", "sweep", "--z-range", "-4.6e-5", "4.6e-5"), expect=0),
        Case("ok-demo-classify", "controls", ("demo", "classify", f"{F}/ok.png"), expect=0),
        Case("ok-models-list", "controls", ("models", "list"), expect=0),
        Case("ok-models-install", "controls", ("--home", f"{W}/h", "models", "install", f"{F}/model"),
             outputs=("h",), expect=0),
    ]


def _bit_flips(n_default: int = 40, n_long: int = 400) -> list[Case]:
    """Valid fixture files with random bytes overwritten or cut short (seeded): any outcome but a traceback, a
    multi-line refusal or a stray write keeps the promise (a flipped pixel may still decode)."""
    targets = (
        ("png", "ok.png", ("demo", "classify", f"{W}/x.png"), "x.png"),
        ("holo-png", "holo.png", ("holo", "autofocus", f"{W}/x.png", "--method", "sweep", "--preset",
                                  "dhm-offaxis-10x"), "x.png"),
        ("h5", "ok.h5", ("holo", "reconstruct", f"{W}/x.h5", "--z", "1e-5", "--out", f"{W}/r.h5"), "x.h5"),
        ("hea", "rec.hea", ("ecg", "render", f"{W}/rec.hea", "--out", f"{W}/r.png"), "rec.hea"),
        ("card", "model/card.toml", ("models", "install", f"{W}/m"), "m/card.toml"),
        ("onnx", "model/model.onnx", ("models", "install", f"{W}/m"), "m/model.onnx"),
        ("spec", "spec.json", ("worker", f"{W}/spec.json"), "spec.json"),
        ("recipe", "recipe.toml", ("train", f"{W}/recipe.toml", "--out", f"{W}/run"), "recipe.toml"),
    )
    cases = []
    for i in range(n_long):
        tname, src, argv, name = targets[i % len(targets)]
        files: tuple[tuple[str, Any], ...] = ((name, ("copy", f"{{F}}/{src}")),)
        if name.startswith("m/"):
            files = (("m", ("copy", "{F}/model")),)
        if name == "rec.hea":
            files += (("rec.dat", ("copy", "{F}/rec.dat")),)
        if tname in ("spec", "recipe"):  # written here so that out_dir is the case's own folder
            doc = json.dumps(tiny_spec()) if tname == "spec" else toml_dumps(tiny_spec())
            files = ((name, doc.encode()),)
        cases.append(Case(f"flip-{tname}-{i}", "bit-flips", argv, files=(*files, (name, ("flip", i))),
                          outputs=("r.h5", "r.png", "run", ".home"), expect=2,
                          also_ok=(0, 1) if tname in ("spec", "recipe") else (0,), long=i >= n_default))
    return cases


def leaf_commands() -> list[tuple[tuple[str, ...], Any]]:
    """Every runnable command of the CLI as (argv path, its parser), found by walking the parser tree: commands a
    plug-in adds later are covered without listing them here."""
    import argparse

    from app.cli import build_parser

    out = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out.append((path, parser))
        for sub in subs:
            for name, child in sub.choices.items():
                walk(child, (*path, name))

    walk(build_parser(), ())
    return out


def _introspected() -> list[Case]:
    """For every command: an unknown option (a usage error, in process); in the long campaign also the command
    with missing input paths and, for each numeric option, hostile values (child processes: unknown commands may
    not be safe to run in the test process)."""
    import argparse

    cases = []
    for path, parser in leaf_commands():
        name = "-".join(path)
        cases.append(Case(f"cmd-{name}-unknown-option", "commands", (*path, "--no-such-option-xyz")))
        if path == ("gui",):
            continue
        base: list[str] = []
        for a in parser._actions:
            if isinstance(a, argparse._HelpAction) or a.dest in ("help", "version"):
                continue
            if not a.option_strings:  # a positional
                base += [f"{W}/missing.png"]
            elif a.required:
                base += [a.option_strings[0], str(a.choices[0]) if a.choices else
                         "1" if a.type in (int, float) else f"{W}/out"]
        for group in parser._mutually_exclusive_groups:
            if group.required and group._group_actions:
                a = group._group_actions[0]
                base += [a.option_strings[0]] + ([] if a.nargs == 0 else [f"{W}/missing.png"])
        if any("missing.png" in b for b in base):  # a command that reads inputs: all of them missing
            cases.append(Case(f"cmd-{name}-missing-inputs", "commands", (*path, *base), child=True, long=True,
                              outputs=("out",)))
        for a in parser._actions:
            if a.option_strings and a.type in (int, float) and a.nargs in (None, 1):
                for i, v in enumerate(("nan", "-1", "abc")):  # "abc" fails in argparse: safe in process
                    cases.append(Case(f"cmd-{name}{a.option_strings[0]}-{i}", "commands",
                                      (*path, *base, a.option_strings[0], v), child=v != "abc", long=True,
                                      outputs=("out", "out.hea", "out.dat"), also_ok=(0,) if v == "-1" else ()))
    return cases


def all_cases(long: bool = False) -> list[Case]:
    cases = (_controls() + _options() + _readers() + _hdf5() + _sidecars() + _cards() + _security()
             + _specs_and_recipes() + _outputs() + _bit_flips() + _introspected())
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    cases = [_sampled(c) for c in cases]
    return [c for c in cases if long or not c.long]


SAMPLED_KINDS = {"options", "readers", "outputs", "sidecars"}  # the fast campaign takes a stable 45 % of these


def _sampled(case: Case) -> Case:
    if case.long or case.kind not in SAMPLED_KINDS or zlib.crc32(case.id.encode()) % 20 < 9:
        return case
    return Case(**{**case.__dict__, "long": True})
