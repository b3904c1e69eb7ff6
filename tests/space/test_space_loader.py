import pytest

from kunlun.model.yamlio import ConfigError
from kunlun.space.budget import parse_budget
from kunlun.space.space import SearchSpace, space_preset_names
from kunlun.space.spec import Range


def test_presets_load_and_are_disjoint_from_model_presets():
    from kunlun.model.config import preset_names

    names = space_preset_names()
    assert {"demo", "movielens", "taobao"} <= set(names)
    assert not set(names) & set(preset_names())
    space = SearchSpace.load("demo")
    assert space.stream_names == ["click", "impression"]
    assert space.spec.budget.kind == "flops" and space.spec.budget.amount > 0
    assert isinstance(space.spec.params.seq_share, Range)


@pytest.mark.parametrize("text,amount", [(2.5e9, 2.5e9), ("2.5G", 2.5e9), ("40M", 4e7), ("1e6", 1e6), (7, 7.0)])
def test_budget_forms(text, amount):
    assert parse_budget(text, kind="flops") == amount


def test_time_budget_form():
    assert parse_budget("40us") == 40.0 and parse_budget("1.5ms") == 1500.0


@pytest.mark.parametrize("edit,path", [
    ({"params": {"windw": [4]}}, "params.windw"),
    ({"params": {"family": ["transformer"]}}, "params.family[0]"),
    ({"params": {"kv_len": {"low": 32, "high": 8}}}, "params.kv_len"),
    ({"params": {"window": {"choices": [4], "tie": "row"}}}, "params.window.tie"),
    ({"params": {"schedule": {"generated": True, "layer_sets": ["pffn+attn"]}}}, "params.schedule.layer_sets[0]"),
    ({"budget": {"kind": "flops", "value": "lots"}}, "budget.value"),
    ({"budget": {"kind": "b200_time", "value": "lots"}}, "budget.value"),
    ({"budget": {"kind": "b200_time", "value": "2.5G"}}, "budget.value"),
    ({"fixed": {"optimizer": {}}}, "fixed.optimizer"),
    ({"fixed": {"model": {"d_model": -1}}}, "fixed.model.d_model"),
    ({"solver": {"fine": "ffn"}}, "solver.fine"),
])
def test_bad_input_names_file_and_key(tmp_path, edit, path):
    import yaml

    raw = {"name": "t", "budget": {"kind": "flops", "value": 2e6}, "base": "kunlun-small"}
    raw.update(edit)
    f = tmp_path / "space.yaml"
    f.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as e:
        SearchSpace.load(f)
    assert e.value.path == path
    assert str(f) in str(e.value)


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="demo"):
        SearchSpace.load("no-such-space")


def test_real_data_spaces_need_a_path():
    with pytest.raises(ConfigError, match="--data movielens:PATH"):
        SearchSpace.load("movielens")


@pytest.mark.realdata
def test_real_data_space_takes_the_schema_from_the_data(shared_data):
    space = SearchSpace.load("movielens", data=f"movielens:{shared_data / 'movielens-100k'}")
    assert set(space.stream_names) == {"rated", "liked"}
    assert space.base.train.split == "inner"  # real-data spaces never choose on the evaluation split


def test_overrides_apply():
    space = SearchSpace.load("demo", budget="3M", examples=128, seed=3)
    assert space.spec.budget.amount == 3e6
    assert space.base.train.examples == 128 and space.base.train.data_seed == 3


def test_an_examples_override_replaces_the_spaces_epochs(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nbase: kunlun-small\nbudget: {kind: flops, value: 4.0e6}\n"
                    "fixed: {train: {epochs: 1.5}}\nparams: {family: [kunlun]}\n")
    assert SearchSpace.load(str(spec)).base.train.epochs == 1.5
    overridden = SearchSpace.load(str(spec), examples=128).base.train
    assert overridden.epochs is None and overridden.examples == 128


def test_split_override_reaches_the_trials_config_and_data():
    from kunlun.space.data import open_cached

    space = SearchSpace.load("demo", split="inner")
    assert SearchSpace.load("demo").base.train.split == "eval" and space.base.train.split == "inner"
    t = space.base.train
    inner = open_cached(t.data, t.data_seed, t.data_examples, t.split)
    full = open_cached(t.data, t.data_seed, t.data_examples, "eval")
    assert inner.request_time.max() <= full.cut_time < full.request_time.max()
    assert len(inner.eval_index) > 0 and inner.cut_time < full.cut_time


def test_a_folder_or_file_named_like_a_preset_does_not_shadow_it(tmp_path, monkeypatch, capsys):
    """Issue 20, item 1: a name without a path separator or a .yaml suffix is a preset; `./NAME` is the path."""
    from kunlun.search.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    (tmp_path / "kunlun-small").mkdir()
    assert main(["flops", "kunlun-small"]) == 0
    assert main(["search", "demo", "--dry-run", "--samples", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["flops", "./kunlun-small"]) == 2  # the folder, read as a path
    assert "kunlun-small: no such file" in capsys.readouterr().err
    (tmp_path / "mine").write_text("model: {}\n")
    assert main(["flops", "mine"]) == 2  # ambiguous: the message says how to read the file
    err = capsys.readouterr().err
    assert "unknown model preset 'mine'" in err and "write ./mine" in err and len(err.splitlines()) == 1
    assert main(["search", "kunlun-small", "--dry-run"]) == 2
    assert "'kunlun-small' is a model preset, not a space preset" in capsys.readouterr().err
    assert main(["search", "./demo", "--out", "x/demo", "--no-progress"]) == 2  # the folder, as a path: bad input
    assert "demo: no such file" in capsys.readouterr().err
    assert not (tmp_path / "results").exists() and not (tmp_path / "x").exists()  # no study.db/json/trials.csv


def test_a_window_wider_than_the_stream_is_rejected(tmp_path, capsys):
    """Issue 20, item 7: a window of max_len or more is bad input (one line naming the key), not silently full."""
    from kunlun.model.config import KunlunConfig
    from kunlun.search.cli import main

    raw = KunlunConfig.preset("kunlun-small").to_dict()
    name = next(iter(raw["model"]["streams"]))
    raw["model"]["streams"][name].update(max_len=16, window=16)
    path = tmp_path / "wide.yaml"
    path.write_text(__import__("yaml").safe_dump(raw))
    assert main(["flops", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"model.streams.{name}.window" in err and "max_len 16" in err and len(err.splitlines()) == 1
