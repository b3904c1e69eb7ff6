"""Bad input everywhere (DESIGN.md "CLI"): every `kunlun` command checks its arguments and files before it starts
work. Each case runs the real CLI (in process, a few as a subprocess) and expects exit 2, one message line that names
the file or key and says what is allowed, no traceback, and nothing created or changed: the --out folder does not
appear and the input files are untouched. Nothing here trains."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kunlun.search.cli import main

PRESET = Path(__file__).parents[2] / "model" / "presets" / "kunlun-small.yaml"


def _config(**subs: str) -> str:
    """kunlun-small's YAML with `key: value` lines replaced (first match of each key)."""
    text = PRESET.read_text()
    for key, value in subs.items():
        text, n = re.subn(rf"\b{key}: [^,}}\n]+", f"{key}: {value}", text, count=1)
        assert n == 1, key
    return text


def _study(folder: Path, name: str = "s") -> Path:
    """A study folder holding one FAILED trial (trial 0), made with Optuna directly (no training)."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from kunlun.search.store import StudyInfo

    folder.mkdir(parents=True)
    url = f"sqlite:///{folder / 'study.db'}"
    StudyInfo(name=name, storage=url, space="demo", budget=2e6, budget_kind="flops", families=["kunlun"],
              objectives=["ne", "b200_us_per_example"], seed=0, trials=1, data="synthetic").write(folder)
    study = optuna.create_study(study_name=name, storage=url, directions=["minimize"] * 2)
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": "x"}))
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_space: Path) -> Path:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    f = tmp_path_factory.mktemp("bad-input")
    tiny = tiny_space.read_text()
    (f / "tiny.yaml").write_text(tiny)
    texts = {
        "empty.yaml": "",
        "blank.yaml": "  \n\n",
        "malformed.yaml": "model: [1, 2\n",
        "list.yaml": "- 1\n- 2\n",
        "duplicate.yaml": PRESET.read_text() + "model: {}\n",
        "cfg_unknown.yaml": PRESET.read_text().replace("model:\n", "model:\n  colour: red\n", 1),
        "cfg_type.yaml": _config(d_model="wide"),
        "cfg_range.yaml": _config(num_layers="-3"),
        "cfg_literal.yaml": _config(sparse_optimizer="sgd"),
        "cfg_seed.yaml": _config(seed="-1"),
        "cfg_experts6.yaml": _config(experts="6"),
        "cfg_ghost.yaml": PRESET.read_text().replace("workload:\n", "workload:\n  ghost_key: 1\n", 1),
        "space_unknown.yaml": tiny + "colour: red\n",
        "space_nested.yaml": tiny.replace("fixed:\n", "fixed:\n  model: {colour: red}\n"),
        "space_type.yaml": tiny.replace("examples: 256", "examples: many"),
        "space_range.yaml": tiny.replace("seq_share: {low: 0.5, high: 0.8}", "seq_share: {low: 0.5, high: 1.8}"),
        "space_literal.yaml": tiny.replace("tie: stream", "tie: everything"),
        "space_seed.yaml": tiny.replace("seed: 0", "seed: -4"),
        "space_base.yaml": tiny.replace("base: kunlun-small", "base: no-such-preset"),
        "space_budget.yaml": tiny.replace("value: 2.0e6", "value: 10"),
        "space_tolerance.yaml": tiny.replace("tolerance: 0.02", "tolerance: 0.9"),
        "space_empty_choices.yaml": tiny.replace("kv_len: [8, 16]", "kv_len: []"),
        "space_misfit.yaml": tiny.replace("fixed:\n", "fixed:\n  model: {interaction: {experts: 6}}\n"),
    }
    for name, text in texts.items():
        (f / name).write_text(text)
    (f / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    # data: MovieLens folders without companions / with garbage, Taobao files
    for name, ratings in (("ml_alone", "1\t1\t5\t100\n2\t1\t4\t200\n"), ("ml_garbage", "no\tratings\nhere\n"),
                          ("ml_mostly_bad", "1\t1\t5\t100\nx\ny\nz\n")):
        (f / name).mkdir()
        (f / name / "u.data").write_text(ratings)
    for name in ("ml_garbage", "ml_mostly_bad"):
        (f / name / "u.user").write_text("1|24|M|technician|85711\n")
        (f / name / "u.item").write_text("1|Film (1995)|01-Jan-1995||http://x|" + "|".join("0" * 19) + "\n")
    (f / "taobao_garbage.csv").write_text("a,b,c\nx,y\n")
    (f / "taobao_corrupt.csv.gz").write_bytes(b"\x1f\x8b" + b"\x00garbage" * 8)
    (f / "taobao_nocsv").mkdir()
    (f / "taobao_nocsv" / "readme.txt").write_text("no data here\n")
    with gzip.open(f / "taobao_ok.csv.gz", "wt") as g:  # 4 sparse features, no dense: 4 context tokens
        g.write("\n".join(f"{u},{i},{i % 3},{'pv' if i % 2 else 'buy'},{1000 + 10 * u + i}"
                          for u in range(1, 8) for i in range(10)) + "\n")
    # storages and study folders
    (f / "notdb.db").write_text("hello, I am not a database\n" * 10)
    (f / "garbage.journal").write_text("garbage\n")
    (f / "a_file").write_text("x")
    (f / "emptydir").mkdir()
    _study(f / "study_ok")
    for name in ("study_badjson", "study_keys", "study_notdb", "study_gone", "study_name"):
        _study(f / name)
    (f / "study_badjson" / "study.json").write_text("{not json")
    (f / "study_keys" / "study.json").write_text(json.dumps({"name": "s"}))
    (f / "study_notdb" / "study.db").write_text("garbage " * 100)
    (f / "study_gone" / "study.db").unlink()
    info = json.loads((f / "study_name" / "study.json").read_text())
    (f / "study_name" / "study.json").write_text(json.dumps({**info, "name": "other"}))
    import optuna

    optuna.create_study(study_name="tiny-2M", storage=f"sqlite:///{f / 'holds.db'}")  # `search tiny`'s study name
    return f


# (id, argv with {f} = the files folder and {out} = a fresh --out path, substrings the message must contain)
CASES = [
    # -- config YAML: flops / cost / train ----------------------------------------------------------------------
    ("flops-no-such-file", ["flops", "{f}/nope.yaml"], ["nope.yaml", "no such file"]),
    ("flops-empty-file", ["flops", "{f}/empty.yaml"], ["empty.yaml", "empty"]),
    ("flops-blank-file", ["flops", "{f}/blank.yaml"], ["blank.yaml", "empty"]),
    ("flops-malformed-yaml", ["flops", "{f}/malformed.yaml"], ["malformed.yaml", "not valid YAML", "line 2"]),
    ("flops-not-utf8", ["flops", "{f}/latin1.yaml"], ["latin1.yaml", "cannot be read"]),
    ("flops-not-a-mapping", ["flops", "{f}/list.yaml"], ["list.yaml", "expected a mapping"]),
    ("flops-duplicate-key", ["flops", "{f}/duplicate.yaml"], ["duplicate.yaml", "duplicate key 'model'"]),
    ("flops-unknown-key", ["flops", "{f}/cfg_unknown.yaml"],
     ["cfg_unknown.yaml", "model.colour", "unknown key", "allowed: family, d_model"]),
    ("flops-unknown-nested-key", ["flops", "{f}/cfg_ghost.yaml"],
     ["cfg_ghost.yaml", "workload.ghost_key", "allowed: batch_size, streams"]),
    ("flops-wrong-type", ["flops", "{f}/cfg_type.yaml"], ["cfg_type.yaml", "model.d_model", "not an integer"]),
    ("flops-out-of-range", ["flops", "{f}/cfg_range.yaml"], ["cfg_range.yaml", "model.num_layers", "must be > 0"]),
    ("flops-bad-choice", ["flops", "{f}/cfg_literal.yaml"],
     ["cfg_literal.yaml", "train.sparse_optimizer", "allowed: 'adamw' | 'adagrad'"]),
    ("flops-unknown-preset", ["flops", "no-such-preset"], ["no-such-preset", "presets: interformer-small"]),
    ("cost-unknown-gpu", ["cost", "kunlun-small", "--gpu", "tpu"], ["--gpu", "'tpu'", "allowed: b200"]),
    ("cost-wrong-type", ["cost", "{f}/cfg_type.yaml"], ["cfg_type.yaml", "model.d_model"]),
    ("train-examples-0", ["train", "kunlun-small", "--examples", "0"], ["--examples", "> 0"]),
    ("train-seed-negative", ["train", "kunlun-small", "--seed", "-1"], ["--seed", ">= 0"]),
    ("train-config-seed-negative", ["train", "{f}/cfg_seed.yaml"], ["cfg_seed.yaml", "train.seed", ">= 0"]),
    ("train-bad-split", ["train", "kunlun-small", "--split", "test"], ["--split", "invalid choice", "'eval'"]),
    # -- data files ---------------------------------------------------------------------------------------------
    ("train-data-unknown-kind", ["train", "kunlun-small", "--data", "parquet:x"],
     ["--data", "'parquet:x'", "allowed: synthetic, movielens:PATH, taobao:PATH"]),
    ("train-data-no-such-path", ["train", "kunlun-small", "--data", "movielens:{f}/nothere"],
     ["nothere", "data", "no such file or folder"]),
    ("train-movielens-missing-companion", ["train", "kunlun-small", "--data", "movielens:{f}/ml_alone"],
     ["ml_alone", "data", "missing companion file u.user"]),
    ("train-movielens-no-valid-row", ["train", "kunlun-small", "--data", "movielens:{f}/ml_garbage"],
     ["ml_garbage/u.data", "no valid row", "MovieLens ratings (user, item, rating 1-5, unix time)"]),
    ("train-movielens-mostly-malformed", ["train", "kunlun-small", "--data", "movielens:{f}/ml_mostly_bad"],
     ["ml_mostly_bad/u.data", "3 of 4 rows are malformed", "MovieLens ratings"]),
    ("train-taobao-no-valid-row", ["train", "kunlun-small", "--data", "taobao:{f}/taobao_garbage.csv"],
     ["taobao_garbage.csv", "no valid row", "user,item,category,behavior in pv/cart/fav/buy,timestamp"]),
    ("train-taobao-corrupt-gz", ["train", "kunlun-small", "--data", "taobao:{f}/taobao_corrupt.csv.gz"],
     ["taobao_corrupt.csv.gz", "cannot be read", "Taobao UserBehavior CSV"]),
    ("train-taobao-folder-without-csv", ["train", "kunlun-small", "--data", "taobao:{f}/taobao_nocsv"],
     ["taobao_nocsv", "exactly one *.csv or *.csv.gz"]),
    ("train-schema-does-not-fit", ["train", "{f}/cfg_experts6.yaml", "--data", "taobao:{f}/taobao_ok.csv.gz"],
     ["cfg_experts6.yaml", "model.interaction.experts", "context tokens", "--data taobao:"]),
    # -- search: the space YAML ---------------------------------------------------------------------------------
    ("search-no-such-space", ["search", "{f}/nope.yaml", "--out", "{out}"], ["nope.yaml", "no such file"]),
    ("search-empty-space", ["search", "{f}/empty.yaml", "--out", "{out}"], ["empty.yaml", "empty"]),
    ("search-malformed-space", ["search", "{f}/malformed.yaml", "--out", "{out}"],
     ["malformed.yaml", "not valid YAML"]),
    ("search-space-not-a-mapping", ["search", "{f}/list.yaml", "--out", "{out}"], ["list.yaml", "a mapping"]),
    ("search-unknown-key", ["search", "{f}/space_unknown.yaml", "--out", "{out}"],
     ["space_unknown.yaml", "colour", "unknown key (allowed: name, budget, params"]),
    ("search-unknown-nested-key", ["search", "{f}/space_nested.yaml", "--out", "{out}"],
     ["space_nested.yaml", "fixed.model.colour", "allowed: family"]),
    ("search-wrong-type", ["search", "{f}/space_type.yaml", "--out", "{out}"],
     ["space_type.yaml", "examples", "not an integer"]),
    ("search-out-of-range", ["search", "{f}/space_range.yaml", "--out", "{out}"],
     ["space_range.yaml", "params.seq_share", "[0, 1]"]),
    ("search-bad-choice", ["search", "{f}/space_literal.yaml", "--out", "{out}"],
     ["space_literal.yaml", "params.window.tie", "allowed: 'all' | 'stream' | 'layer'"]),
    ("search-empty-choices", ["search", "{f}/space_empty_choices.yaml", "--out", "{out}"],
     ["space_empty_choices.yaml", "params.kv_len", "at least one choice"]),
    ("search-space-seed-negative", ["search", "{f}/space_seed.yaml", "--out", "{out}"],
     ["space_seed.yaml", "seed", ">= 0"]),
    ("search-space-tolerance", ["search", "{f}/space_tolerance.yaml", "--out", "{out}"],
     ["space_tolerance.yaml", "budget.tolerance", "(0, 0.5)"]),
    ("search-unknown-base", ["search", "{f}/space_base.yaml", "--out", "{out}"],
     ["space_base.yaml", "base", "no-such-preset", "presets: interformer-small"]),
    ("search-unknown-space-preset", ["search", "no-such-space", "--out", "{out}"],
     ["no-such-space", "space presets: ", "demo"]),
    # -- search: flags and budgets ------------------------------------------------------------------------------
    ("search-trials-0", ["search", "{f}/tiny.yaml", "--trials", "0", "--out", "{out}"], ["--trials", ">= 1"]),
    ("search-workers-0", ["search", "{f}/tiny.yaml", "--workers", "0", "--out", "{out}"], ["--workers", ">= 1"]),
    ("search-examples-0", ["search", "{f}/tiny.yaml", "--examples", "0", "--out", "{out}"], ["--examples", ">= 1"]),
    ("search-seed-negative", ["search", "{f}/tiny.yaml", "--seed", "-1", "--out", "{out}"], ["--seed", ">= 0"]),
    ("search-trials-not-a-number", ["search", "{f}/tiny.yaml", "--trials", "many", "--out", "{out}"],
     ["--trials", "invalid int value"]),
    ("search-budget-negative", ["search", "{f}/tiny.yaml", "--budget", "-5", "--out", "{out}"],
     ["--budget", "'-5'", "allowed: a positive", "2.5G", "40us"]),
    ("search-budget-zero", ["search", "{f}/tiny.yaml", "--budget", "0", "--out", "{out}"],
     ["--budget", "'0'", "allowed: a positive"]),
    ("search-budget-garbage", ["search", "{f}/tiny.yaml", "--budget", "lots", "--out", "{out}"],
     ["--budget", "'lots'", "allowed: a positive"]),
    ("search-budget-too-small", ["search", "{f}/tiny.yaml", "--budget", "10", "--out", "{out}"],
     ["tiny.yaml", "--budget", "no config of this space lands on 10", "smallest feasible", "largest"]),
    ("search-budget-too-large", ["search", "{f}/tiny.yaml", "--budget", "1e15", "--out", "{out}"],
     ["--budget", "lands on 1e+15", "smallest feasible", "largest"]),
    ("search-space-budget-infeasible", ["search", "{f}/space_budget.yaml", "--out", "{out}"],
     ["space_budget.yaml", "budget.value", "smallest feasible"]),
    ("search-time-budget-too-small", ["search", "{f}/tiny.yaml", "--budget", "0.001us", "--out", "{out}"],
     ["--budget", "0.001us per example of predicted B200 time", "smallest feasible", "us (the largest)"]),
    ("search-cpus-per-trial-0", ["search", "{f}/tiny.yaml", "--backend", "ray", "--cpus-per-trial", "0",
                                 "--out", "{out}"], ["--cpus-per-trial", "> 0"]),
    ("search-gpus-per-trial-negative", ["search", "{f}/tiny.yaml", "--backend", "ray", "--gpus-per-trial", "-1",
                                        "--out", "{out}"], ["--gpus-per-trial", ">= 0"]),
    ("search-address-without-ray", ["search", "{f}/tiny.yaml", "--address", "10.0.0.1:6379", "--out", "{out}"],
     ["--address", "--backend ray"]),
    ("search-unknown-backend", ["search", "{f}/tiny.yaml", "--backend", "dask", "--out", "{out}"],
     ["--backend", "invalid choice", "'optuna', 'ray'"]),
    ("search-out-is-a-file", ["search", "{f}/tiny.yaml", "--out", "{f}/a_file"], ["--out", "a_file", "is a file"]),
    # -- search: data -------------------------------------------------------------------------------------------
    ("search-data-no-such-path", ["search", "{f}/tiny.yaml", "--data", "movielens:{f}/nothere", "--out", "{out}"],
     ["--data", "nothere", "does not exist"]),
    ("search-data-without-path", ["search", "{f}/tiny.yaml", "--data", "movielens:", "--out", "{out}"],
     ["data", "pass --data movielens:PATH"]),
    ("search-data-missing-companion", ["search", "{f}/tiny.yaml", "--data", "movielens:{f}/ml_alone",
                                       "--out", "{out}"], ["ml_alone", "missing companion file u.user"]),
    ("search-schema-does-not-fit", ["search", "{f}/space_misfit.yaml", "--data", "taobao:{f}/taobao_ok.csv.gz",
                                    "--out", "{out}"],
     ["space_misfit.yaml", "fixed.model.interaction.experts", "context tokens", "schema of data taobao:"]),
    ("search-data-no-valid-row", ["search", "{f}/tiny.yaml", "--data", "taobao:{f}/taobao_garbage.csv",
                                  "--out", "{out}"], ["taobao_garbage.csv", "no valid row"]),
    # -- search: storages and study folders ---------------------------------------------------------------------
    ("search-storage-not-a-url", ["search", "{f}/tiny.yaml", "--storage", "mongodb://x", "--out", "{out}"],
     ["--storage", "'mongodb://x'", "allowed: sqlite:///PATH, journal:PATH, postgresql://"]),
    ("search-storage-not-a-database", ["search", "{f}/tiny.yaml", "--storage", "sqlite:///{f}/notdb.db",
                                       "--out", "{out}"], ["--storage", "notdb.db", "not an SQLite database"]),
    ("search-storage-is-a-folder", ["search", "{f}/tiny.yaml", "--storage", "sqlite:///{f}/emptydir",
                                    "--out", "{out}"], ["--storage", "emptydir", "is a folder"]),
    ("search-storage-folder-missing", ["search", "{f}/tiny.yaml", "--storage", "sqlite:///{f}/no/dir/x.db",
                                       "--out", "{out}"], ["--storage", "no/dir", "does not exist"]),
    ("search-journal-not-a-journal", ["search", "{f}/tiny.yaml", "--storage", "journal:{f}/garbage.journal",
                                      "--out", "{out}"], ["--storage", "garbage.journal", "not an Optuna journal"]),
    ("search-journal-folder-missing", ["search", "{f}/tiny.yaml", "--storage", "journal:{f}/no/dir/j.log",
                                       "--out", "{out}"], ["--storage", "does not exist"]),
    ("search-storage-server-unreachable", ["search", "{f}/tiny.yaml", "--storage",
                                           "postgresql://nobody@127.0.0.1:1/nothing", "--out", "{out}"],
     ["--storage", "postgresql://nobody@127.0.0.1:1/nothing"]),
    ("search-storage-holds-the-study", ["search", "{f}/tiny.yaml", "--storage", "sqlite:///{f}/holds.db",
                                        "--out", "{out}"],
     ["--storage", "already holds a study 'tiny-2M'", "--resume"]),
    ("search-resume-without-study", ["search", "{f}/tiny.yaml", "--resume", "--out", "{out}"],
     ["--resume", "holds no study", "study.json"]),
    ("search-resume-corrupt-study", ["search", "{f}/tiny.yaml", "--resume", "--out", "{f}/study_badjson"],
     ["study_badjson/study.json", "unreadable"]),
    ("search-resume-storage-not-a-database", ["search", "{f}/tiny.yaml", "--resume", "--out", "{f}/study_notdb"],
     ["study_notdb/study.json", "storage", "not an SQLite database"]),
    # -- pareto / export ----------------------------------------------------------------------------------------
    ("pareto-no-such-folder", ["pareto", "{f}/nodir"], ["nodir", "no such study folder"]),
    ("pareto-not-a-study-folder", ["pareto", "{f}/emptydir"], ["emptydir", "no study.json"]),
    ("pareto-corrupt-study-json", ["pareto", "{f}/study_badjson"], ["study_badjson/study.json", "unreadable"]),
    ("pareto-study-json-missing-keys", ["pareto", "{f}/study_keys"], ["study_keys/study.json", "missing"]),
    ("pareto-storage-not-a-database", ["pareto", "{f}/study_notdb"],
     ["study_notdb/study.json", "storage", "not an SQLite database"]),
    ("pareto-storage-gone", ["pareto", "{f}/study_gone"], ["study_gone/study.json", "storage", "does not exist"]),
    ("pareto-study-not-in-storage", ["pareto", "{f}/study_name"],
     ["study_name/study.json", "name", "holds no study 'other'", "'s'"]),
    ("pareto-reeval-negative", ["pareto", "{f}/study_ok", "--reeval", "-1"], ["--reeval", ">= 0"]),
    ("pareto-bad-format", ["pareto", "{f}/study_ok", "--format", "xml"], ["--format", "invalid choice", "'json'"]),
    ("export-no-such-folder", ["export", "{f}/nodir", "--pick", "knee"], ["nodir", "no such study folder"]),
    ("export-storage-not-a-database", ["export", "{f}/study_notdb", "--pick", "knee"],
     ["study_notdb/study.json", "not an SQLite database"]),
    ("export-no-such-trial", ["export", "{f}/study_ok", "--trial", "99"], ["--trial 99", "no such trial", "0..0"]),
    ("export-trial-not-complete", ["export", "{f}/study_ok", "--trial", "0"], ["--trial 0", "only complete"]),
    ("export-nothing-to-pick", ["export", "{f}/study_ok", "--pick", "knee"], ["study_ok", "no complete feasible"]),
    ("export-output-is-a-folder", ["export", "{f}/study_ok", "--trial", "0", "-o", "{f}/emptydir"],
     ["-o", "emptydir", "is a folder"]),
    ("export-needs-a-choice", ["export", "{f}/study_ok"], ["one of the arguments --trial --pick is required"]),
    # -- scaling ------------------------------------------------------------------------------------------------
    ("scaling-trials-0", ["scaling", "{f}/tiny.yaml", "--budgets", "1M,2M", "--trials", "0", "--out", "{out}"],
     ["--trials", ">= 1"]),
    ("scaling-budget-step", ["scaling", "{f}/tiny.yaml", "--num-budgets", "2", "--budget-step", "0.5x",
                             "--out", "{out}"], ["--budget-step", "> 1"]),
    ("scaling-num-budgets-0", ["scaling", "{f}/tiny.yaml", "--num-budgets", "0", "--out", "{out}"],
     ["--num-budgets", ">= 1"]),
    ("scaling-both-budget-flags", ["scaling", "{f}/tiny.yaml", "--budgets", "1M", "--num-budgets", "2",
                                   "--out", "{out}"], ["--budgets or --num-budgets, not both"]),
    ("scaling-budget-negative", ["scaling", "{f}/tiny.yaml", "--budgets=-1M,2M", "--out", "{out}"],
     ["--budgets", "'-1M'", "allowed: a positive"]),
    ("scaling-budget-infeasible", ["scaling", "{f}/tiny.yaml", "--budgets", "2M,10", "--out", "{out}"],
     ["tiny.yaml", "--budgets", "lands on 10", "smallest feasible"]),
    ("scaling-target-garbage", ["scaling", "{f}/tiny.yaml", "--budgets", "1M", "--target", "big", "--out", "{out}"],
     ["--target", "'big'", "allowed"]),
    ("scaling-from-missing", ["scaling", "{f}/tiny.yaml", "--from", "{f}/nodir", "--out", "{out}"],
     ["nodir", "no such study folder"]),
    ("scaling-from-corrupt", ["scaling", "{f}/tiny.yaml", "--from", "{f}/study_notdb", "--out", "{out}"],
     ["study_notdb/study.json", "not an SQLite database"]),
    ("scaling-nothing-to-fit", ["scaling", "{f}/tiny.yaml", "--out", "{out}"], ["nothing to fit"]),
    ("scaling-needs-out", ["scaling", "{f}/tiny.yaml", "--budgets", "1M"], ["--out", "required"]),
    # -- the command itself -------------------------------------------------------------------------------------
    ("unknown-command", ["frobnicate"], ["invalid choice: 'frobnicate'", "'search'"]),
    ("unknown-flag", ["flops", "kunlun-small", "--frob"], ["unrecognized arguments: --frob"]),
]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _argv(template: list[str], files: Path, out: Path) -> list[str]:
    return [a.replace("{f}", str(files)).replace("{out}", str(out)) for a in template]


def _check(code: int, stderr: str, argv: list[str], expected: list[str], out: Path) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip() and ": warning: " not in line]
    assert len(lines) == 1, lines
    message = lines[0]
    command = argv[0] if argv[0] in ("search", "pareto", "export", "train", "flops", "cost", "scaling") else ""
    assert message.startswith(f"kunlun {command}".strip()), message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert not out.exists(), f"{out} was created"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_message(case, files: Path, tmp_path: Path, capsys) -> None:
    _, template, expected = case
    out = tmp_path / "out"
    argv = _argv(template, files, out)
    before = _tree(files)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    captured = capsys.readouterr()
    _check(code, captured.err, argv, expected, out)
    assert _tree(files) == before, "an input file or folder was created or changed"
    assert list(tmp_path.iterdir()) == [], "something was written next to --out"


SUBPROCESS = ("flops-malformed-yaml", "search-budget-too-small", "pareto-storage-not-a-database",
              "train-movielens-missing-companion")


@pytest.mark.parametrize("name", SUBPROCESS)
def test_bad_input_in_a_real_process(name: str, files: Path, tmp_path: Path) -> None:
    """The same through the installed entry point's code path in a fresh interpreter (exit status, stderr only)."""
    _, template, expected = next(c for c in CASES if c[0] == name)
    out = tmp_path / "out"
    argv = _argv(template, files, out)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "kunlun.search.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=120)
    _check(proc.returncode, proc.stderr, argv, expected, out)
    assert proc.stdout == ""


def test_every_command_is_in_the_matrix() -> None:
    from kunlun.search.cli import COMMANDS

    covered = {c[1][0] for c in CASES}
    assert set(COMMANDS) - {"presets"} <= covered  # `presets` takes no input
