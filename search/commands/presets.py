"""`kunlun presets`: model presets (model/presets) and space presets (space/presets), with their kind."""

from __future__ import annotations

import argparse
import json
from importlib import resources

HELP = "list model and space presets"


def _names(package: str) -> list[str]:
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        return []
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def _describe(package: str, name: str) -> str:
    text = (resources.files(package) / f"{name}.yaml").read_text(encoding="utf-8")
    first = text.splitlines()[0] if text else ""
    return first[1:].strip() if first.startswith("#") else ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    rows = [{"name": n, "kind": "model", "description": _describe("kunlun.model.presets", n)}
            for n in _names("kunlun.model.presets")]
    rows += [{"name": n, "kind": "space", "description": _describe("kunlun.space.presets", n)}
             for n in _names("kunlun.space.presets")]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['kind']:<5}  {r['description']}")
    return 0
