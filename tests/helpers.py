"""Small helpers several test folders share: raw SQL behind the code's back, every field path of a nested card and a
copy with one field replaced, checking and saving an onnx-helper graph as a model file, and a model's row of
`vitascope models list --json`."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def run_sql(db: Path, *statements: str) -> None:
    """Run and commit `statements` on the SQLite file `db`, as another program (or a damaged disk) would."""
    con = sqlite3.connect(db)
    try:
        for statement in statements:
            con.execute(statement)
        con.commit()
    finally:
        con.close()


def field_paths(node: Any, into_lists: bool = True, prefix: tuple = ()) -> Iterator[tuple]:
    """The key path of every field of a nested dict (and, with `into_lists`, of every list item), parents first."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        yield (*prefix, k)
        if isinstance(v, dict) or (into_lists and isinstance(v, list)):
            yield from field_paths(v, into_lists, (*prefix, k))


def replaced(data: Any, path: tuple, value: Any) -> Any:
    """A deep copy of `data` with the field at key path `path` set to `value`."""
    out = copy.deepcopy(data)
    node = out
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return out


def save_onnx_graph(graph: Any, path: Path) -> None:
    """An onnx-helper graph as a checked opset-17 model file at `path`."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def listed_model(main: Any, capsys: Any, model_id: str) -> dict:
    """The row of `model_id` in `vitascope models list --json` (run through the CLI's `main`)."""
    assert main(["models", "list", "--json"]) == 0
    return next(r for r in json.loads(capsys.readouterr().out) if r["id"] == model_id)
