"""Indexing and searching through `vitascope clip index | search | eval` with a small randomly initialised CLIP
converted to ONNX: incremental updates, image/text/combined queries (rclip's weighted sum with negatives), the
threshold, the JSON contract, recall arithmetic and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from app.cli import main
from app.core.errors import BadInput
from plugins.textsearch.evaluate import recall
from plugins.textsearch.model import ClipModel
from plugins.textsearch.preprocess import preprocess
from plugins.textsearch.query import parse_query, split_query

COLOURS = ("red", "green", "blue", "yellow", "white", "black")  # the `photos` fixture's files, in order


def run(capsys, *argv):
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_index_search_and_incremental_update(model_dir, photos, tmp_path, capsys):
    db = str(tmp_path / "photos.vdb")
    code, out, _ = run(capsys, "clip", "index", str(photos), "--db", db, "--model", str(model_dir), "--json")
    rep = json.loads(out)
    assert code == 0 and rep["files"] == 6 and rep["embedded"] == 6 and rep["model"] == "tiny-clip"
    # an image query finds itself first with cosine 1
    code, out, _ = run(capsys, "clip", "search", "--db", db, "--image", str(photos / "sub" / "green.png"),
                       "--k", "3", "--json")
    res = json.loads(out)
    assert code == 0 and res["model"] == "tiny-clip" and len(res["results"]) == 3
    assert res["results"][0]["file"].endswith("green.png") and res["results"][0]["score"] == pytest.approx(1, abs=1e-4)
    scores = [r["score"] for r in res["results"]]
    assert scores == sorted(scores, reverse=True)
    # nothing changed → nothing embedded; a new file → one; a removed file → dropped from results
    code, out, _ = run(capsys, "clip", "index", str(photos), "--db", db, "--model", str(model_dir), "--json")
    assert json.loads(out)["embedded"] == 0
    shutil.copy(photos / "red.png", photos / "red_copy.png")
    (photos / "sub" / "green.png").unlink()
    code, out, _ = run(capsys, "clip", "index", str(photos), "--db", db, "--model", str(model_dir), "--json")
    rep = json.loads(out)
    assert rep["embedded"] == 1 and rep["files"] == 6
    code, out, _ = run(capsys, "clip", "search", "--db", db, "--text", "green", "--k", "50", "--json")
    files = [r["file"] for r in json.loads(out)["results"]]
    assert len(files) == 6 and not any(f.endswith("green.png") for f in files)
    assert any(f.endswith("red_copy.png") for f in files)


def test_text_query_scores_are_the_model_cosines(model_dir, indexed, capsys):
    db = str(indexed[1])
    code, out, _ = run(capsys, "clip", "search", "--db", db, "--text", "a red square", "--k", "6", "--json")
    got = {r["file"]: r["score"] for r in json.loads(out)["results"]}
    m = ClipModel(model_dir)
    q = m.encode_texts(["a red square"])[0]
    for f, s in got.items():
        assert s == pytest.approx(float(m.encode_images(preprocess(f, m.size))[0] @ q), abs=1e-4)


def test_combined_query_is_weighted_sum_minus_negatives(model_dir, indexed, capsys):
    photos, db = indexed[0], str(indexed[1])
    img = str(photos / "blue.png")
    code, out, _ = run(capsys, "clip", "search", "--db", db, "--query", "2:red car", "+", img, "-", "night",
                       "--k", "6", "--json")
    assert code == 0
    got = {r["file"]: r["score"] for r in json.loads(out)["results"]}
    m = ClipModel(model_dir)
    t = m.encode_texts(["red car", "night"])
    q = 2 * t[0] + m.encode_images(preprocess(img, m.size))[0] - t[1]
    q /= np.linalg.norm(q)
    for f, s in got.items():
        assert s == pytest.approx(float(m.encode_images(preprocess(f, m.size))[0] @ q), abs=1e-4)
    # the same query typed as one line in the GUI parses to the same terms
    assert [(t.kind, t.value, t.weight) for t in parse_query(split_query(f'"2:red car" + {img} - night'))] == \
        [("text", "red car", 2.0), ("image", img, 1.0), ("text", "night", -1.0)]


def test_threshold_and_k(model_dir, indexed, capsys):
    db = str(indexed[1])
    _, out, _ = run(capsys, "clip", "search", "--db", db, "--text", "dog", "--k", "6", "--json")
    scores = [r["score"] for r in json.loads(out)["results"]]
    cut = (scores[1] + scores[2]) / 2
    _, out, _ = run(capsys, "clip", "search", "--db", db, "--text", "dog", "--k", "6", "--threshold", str(cut),
                    "--json")
    assert [r["score"] for r in json.loads(out)["results"]] == scores[:2]
    _, out, _ = run(capsys, "clip", "search", "--db", db, "--text", "dog", "--k", "1", "--json")
    assert len(json.loads(out)["results"]) == 1


def test_unreadable_image_is_skipped_with_a_line(model_dir, photos, tmp_path, capsys):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code, out, err = run(capsys, "clip", "index", str(photos), "--db", str(tmp_path / "p.vdb"), "--model",
                         str(model_dir), "--json")
    assert code == 0 and json.loads(out)["files"] == 6
    assert "broken.jpg" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["clip", "search", "--db", "{tmp}/none.vdb", "--text", "x"], "no such catalogue"),
    (["clip", "search", "--db", "{db}", "--text", "x", "--k", "0"], "--k must be positive"),
    (["clip", "search", "--db", "{db}", "--query", "a", "+"], "ends with an operator"),
    (["clip", "search", "--db", "{db}", "--text", "x", "--threshold", "nan"], "--threshold"),
    (["clip", "search", "--db", "{db}", "--query", "a", "-", "a"], "cancel out"),
    (["clip", "search", "--db", "{db}", "--image", "{tmp}/none.png"], "no such file"),
    (["clip", "index", "{tmp}/nofolder", "--db", "{db}", "--model", "{model}"], "no such folder"),
    (["clip", "index", "{photos}", "--db", "{db}", "--model", "{tmp}/nomodel"], "is not installed"),
    (["clip", "eval", "--captions", "{tmp}/caps.json", "--images", "{photos}", "--model", "{model}"], "row 0"),
])
def test_bad_input_exits_2_with_one_line(argv, message, model_dir, indexed, tmp_path, capsys):
    photos, db = indexed
    (tmp_path / "caps.json").write_text(json.dumps([{"image": "red.png"}]))
    fill = {"tmp": str(tmp_path), "db": str(db), "model": str(model_dir), "photos": str(photos)}
    code, _, err = run(capsys, *[a.format(**fill) for a in argv])
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_eval_reports_recalls(model_dir, photos, tmp_path, capsys):
    rows = [{"image": f"{'sub/' if i % 2 else ''}{c}.png", "caption": f"a {c} picture"}
            for i, c in enumerate(COLOURS)] + [{"image": "red.png", "caption": "something red"}]
    (tmp_path / "caps.json").write_text(json.dumps(rows))
    code, out, _ = run(capsys, "clip", "eval", "--captions", str(tmp_path / "caps.json"), "--images", str(photos),
                       "--model", str(model_dir), "--json")
    res = json.loads(out)
    assert code == 0 and res["images"] == 6 and res["captions"] == 7 and res["model"] == "tiny-clip"
    for d in ("t2i", "i2t"):
        assert set(res[d]) == {"1", "5", "10"} and res[d]["10"] == 100.0  # 6 images: every rank is < 10
        assert 0 <= res[d]["1"] <= res[d]["5"] <= 100


def test_recall_arithmetic():
    # 3 captions, 2 images: caption 0 → image 0 (ranked 1st), caption 1 → image 0 (ranked 2nd), caption 2 → image 1
    sim = np.array([[0.9, 0.1], [0.2, 0.5], [0.3, 0.4]])
    r = recall(sim, np.array([0, 0, 1]))
    assert r["t2i"]["1"] == pytest.approx(200 / 3, abs=0.01) and r["t2i"]["5"] == 100.0
    # image 0: its best caption (0, 0.9) is top of its column; image 1: caption 1 (0.5) outranks caption 2 (0.4)
    assert r["i2t"]["1"] == 50.0 and r["i2t"]["5"] == 100.0


def test_query_grammar():
    with pytest.raises(BadInput, match="expected"):
        parse_query(["a", "b"])
    with pytest.raises(BadInput, match="positive"):
        parse_query(["-", "night"])
    assert split_query("a t-shirt - night") == ["a t-shirt", "-", "night"]
    assert parse_query(["0.5:dog"])[0].weight == 0.5


def test_zero_shot_classify_folder_of_labels(model_dir, photos, tmp_path, capsys):
    from plugins.textsearch.zeroshot import TEMPLATES, class_vectors

    labelled = tmp_path / "labelled"
    for name in ("red", "blue", "green"):
        (labelled / f"{name}_thing").mkdir(parents=True)
        src = next(photos.rglob(f"{name}.png"))
        for i in range(2):
            shutil.copy(src, labelled / f"{name}_thing" / f"{i}.png")
    code, out, _ = run(capsys, "clip", "classify", str(labelled), "--model", str(model_dir), "--json")
    res = json.loads(out)
    assert code == 0 and res["labels"] == ["blue thing", "green thing", "red thing"] and len(res["results"]) == 6
    conf = np.array(res["confusion"])
    assert conf.sum() == 6 and res["top1"] == pytest.approx(100 * np.trace(conf) / 6, abs=0.01)
    assert res["top5"] == 100.0
    # the class vectors are the re-normalised mean of the 80 templates' unit embeddings
    m = ClipModel(model_dir)
    assert len(TEMPLATES) == 80 and all(t.count("{}") == 1 for t in TEMPLATES)
    want = m.encode_texts([t.format("red thing") for t in TEMPLATES]).mean(0)
    np.testing.assert_allclose(class_vectors(m, ["red thing", "blue"])[0], want / np.linalg.norm(want), atol=1e-5)
    code, _, err = run(capsys, "clip", "classify", str(photos / "sub"), "--model", str(model_dir))
    assert code == 2 and "sub-folder" in err
