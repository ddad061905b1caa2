"""`vitascope retrieval index | search | eval` end to end on generated images (classical embedders, so no model
is needed): the JSON contracts, incremental indexing, unreadable files, and bad input → exit 2 with one line."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from app.cli import main
from plugins.retrieval.synthetic import write_market_layout


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    return write_market_layout(tmp_path_factory.mktemp("syn") / "market", n_ids=12, seed=77, views=4)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("VITASCOPE_HOME", str(tmp_path / "home"))


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_index_is_incremental_and_lists_unreadable_files(tmp_path, capsys, market):
    photos = tmp_path / "photos"
    shutil.copytree(market / "bounding_box_test", photos / "a")
    db = tmp_path / "cat.vdb"
    code, out, err = _run(capsys, "retrieval", "index", str(photos), "--db", str(db), "--model", "colour-hist")
    assert code == 0, err
    assert "36 images indexed" in out and "36 new" in out and "36 embedded" in out
    assert "embed: 36/36" in err
    victim = sorted((photos / "a").iterdir())[0]
    victim.unlink()
    (photos / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, out, err = _run(capsys, "retrieval", "index", str(photos), "--db", str(db), "--model", "colour-hist")
    assert code == 0
    assert "35 images indexed" in out and "1 removed" in out and "0 embedded" in out
    assert f"{photos / 'a' / 'broken.png'}: " in err


def test_search_json_contract(tmp_path, capsys, market):
    db = tmp_path / "cat.vdb"
    assert _run(capsys, "retrieval", "index", str(market), "--db", str(db), "--model", "hist+hog")[0] == 0
    query = sorted((market / "query").iterdir())[3]
    code, out, err = _run(capsys, "retrieval", "search", "--db", str(db), "--image", str(query), "--k", "5", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == "hist+hog" and len(data["results"]) == 5
    assert set(data["results"][0]) == {"file", "score"}
    top = data["results"][0]
    assert top["file"] == str(query.resolve()) and top["score"] == pytest.approx(1, abs=1e-4)
    scores = [r["score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)
    code, out, _ = _run(capsys, "retrieval", "search", "--db", str(db), "--image", str(query), "--min-score",
                        "0.999", "--json")
    assert [r["file"] for r in json.loads(out)["results"]] == [str(query.resolve())]


def test_eval_json_contract(capsys, market):
    code, out, err = _run(capsys, "retrieval", "eval", str(market), "--model", "colour-hist", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert {"model", "queries", "gallery", "map", "minp", "cmc", "recall"} <= set(data)
    assert set(data["cmc"]) == {"1", "5", "10"} and set(data["recall"]) == {"1", "2", "4", "8"}
    assert data["layout"] == "market1501" and data["queries"] == 12 and data["gallery"] == 36
    assert 0 < data["map"] <= 1 and data["cmc"]["1"] <= data["cmc"]["5"] <= data["cmc"]["10"]
    code, out, _ = _run(capsys, "retrieval", "eval", str(market), "--model", "colour-hist", "--rerank", "--json")
    assert code == 0 and json.loads(out)["rerank"] is True


@pytest.mark.parametrize("argv, needle", [
    (["retrieval", "search", "--db", "{tmp}/none.vdb", "--image", "{tmp}/q.png"], "no such catalogue"),
    (["retrieval", "index", "{tmp}/absent", "--db", "{tmp}/c.vdb", "--model", "hog"], "no such folder"),
    (["retrieval", "index", "{tmp}", "--db", "{tmp}/c.vdb", "--model", "not-a-model"], "not-a-model"),
    (["retrieval", "eval", "{tmp}/absent"], "no such folder"),
    (["retrieval", "eval", "{tmp}", "--layout", "cub", "--model", "hog"], "images.txt"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, needle):
    cv2.imwrite(str(tmp_path / "q.png"), np.zeros((8, 8, 3), np.uint8))
    code, out, err = _run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err


def test_search_bad_image_and_k(tmp_path, capsys, market):
    db = tmp_path / "cat.vdb"
    _run(capsys, "retrieval", "index", str(market / "query"), "--db", str(db), "--model", "hog")
    bad = tmp_path / "bad.jpg"
    bad.write_text("no")
    for extra, needle in ((["--image", str(bad)], "bad.jpg"),
                          (["--image", str(sorted((market / "query").iterdir())[0]), "--k", "0"], "--k")):
        code, _, err = _run(capsys, "retrieval", "search", "--db", str(db), *extra)
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err
