"""Config: YAML round trip, float reading, and every validation error naming its key path."""

from __future__ import annotations

import copy
import warnings

import pytest

from kunlun.model import ConfigError, KunlunConfig, preset_names
from kunlun.model.config import SchemaConfig, StreamSchema
from kunlun.model.yamlio import load_yaml_text


@pytest.mark.parametrize("name", preset_names())
def test_presets_round_trip(tmp_path, name):
    config = KunlunConfig.preset(name)
    path = tmp_path / "c.yaml"
    config.to_yaml(path)
    again = KunlunConfig.from_yaml(path)
    assert again == config
    assert again.to_dict() == config.to_dict()


def test_tracked_result_configs_are_kunlun_small_with_other_real_data_streams():
    """results/configs holds configs behind reported numbers; each must still load and validate, and differ from
    kunlun-small only where it says (its real-data stream defaults, and the cosine decay of runs past one epoch), so
    its numbers stay comparable."""
    from pathlib import Path

    files = sorted((Path(__file__).parents[2] / "results" / "configs").glob("*.yaml"))
    assert files
    small = KunlunConfig.preset("kunlun-small").to_dict()
    for f in files:
        raw = KunlunConfig.from_yaml(f).to_dict()
        assert raw["model"].pop("stream_defaults") != small["model"]["stream_defaults"]
        assert raw["model"] == {k: v for k, v in small["model"].items() if k != "stream_defaults"}
        assert raw["train"].pop("lr_schedule") == "cosine" and small["train"]["lr_schedule"] == "wsd"
        assert raw["train"] == {k: v for k, v in small["train"].items() if k != "lr_schedule"}
        assert {k: v for k, v in raw.items() if k not in ("model", "train")} == {
            k: v for k, v in small.items() if k not in ("model", "train")}


def test_presets_cover_the_issue():
    names = preset_names()
    assert {"kunlun-small", "kunlun-base", "interformer-small", "wukong-small"} <= set(names)
    configs = [KunlunConfig.preset(n) for n in names]
    assert any(c.model.schedule == "alternate" and any(s.window is not None for s in c.model.streams.values())
               for c in configs)
    assert any(len({s.d for s in c.model.streams.values()}) > 1 for c in configs)
    # all presets train on the same default synthetic data
    assert len({(c.train.data, c.train.data_seed, tuple(c.schema.streams)) for c in configs}) == 1
    assert set(configs[0].schema.streams) == {"click", "impression"}


def test_exponent_numbers_read_as_floats():
    assert load_yaml_text("a: 2e9\nb: 1e-3\nc: 5\nd: .5\ne: 1.0E+3\nf: '2e9'") == {
        "a": 2e9, "b": 1e-3, "c": 5, "d": 0.5, "e": 1000.0, "f": "2e9"}
    data = KunlunConfig.preset("kunlun-small").to_dict()
    data["train"]["examples"] = 6e4  # an integral float is accepted for an integer field
    assert KunlunConfig.from_dict(data).train.examples == 60000


def test_float_round_trip_is_exact(tmp_path):
    config = KunlunConfig.preset("kunlun-small")
    config.train.lr = 1e-5
    config.model.rote.t_scale = 1 / 3
    path = tmp_path / "c.yaml"
    config.to_yaml(path)
    assert KunlunConfig.from_yaml(path) == config


def _base() -> dict:
    return KunlunConfig.preset("kunlun-small").to_dict()


def _set(data: dict, path: str, value) -> dict:
    data = copy.deepcopy(data)
    keys = path.split(".")
    node = data
    for k in keys[:-1]:
        node = node[k]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


_DELETE = object()

BAD = [
    ("model.bogus", 1, "model.bogus", "unknown key"),
    ("model.streams.click.bogus", 1, "model.streams.click.bogus", "unknown key"),
    ("model.d_model", "wide", "model.d_model", "not an integer"),
    ("model.d_model", 0, "model.d_model", "must be > 0"),
    ("model.d_model", 3.5, "model.d_model", "not an integer"),
    ("model.family", "transformer", "model.family", "not allowed"),
    ("model.schedule", "sometimes", "model.schedule", "is not"),
    ("model.schedule", [["pffn", "hsp"], ["swa"], ["mlp"]], "model.schedule[2]", "unknown component"),
    ("model.schedule", [["pffn"], ["swa"], ["hsp"]], "model.schedule[0]", "must contain 'hsp'"),
    ("model.schedule", [["hsp"]], "model.schedule", "num_layers"),
    ("model.streams.click.heads", 5, "model.streams.click.heads", "must divide"),
    ("model.streams.click.window", -1, "model.streams.click.window", ">= 0"),
    ("model.streams.click.window", [4, 4], "model.streams.click.window", "num_layers"),
    ("model.streams.click.depth", 9, "model.streams.click.depth", "exceeds num_layers"),
    ("model.streams.click.pffn_activation", "tanh", "model.streams.click.pffn_activation", "not allowed"),
    ("model.kvgen.kind", "mlp", "model.kvgen.kind", "not allowed"),
    ("model.kvgen.max_params", 10, "model.streams.click", "above model.kvgen.max_params"),
    ("model.interaction.experts", 50, "model.interaction.experts", "context tokens"),
    ("model.rote.time_fraction", 2.0, "model.rote.time_fraction", "[0, 1]"),
    ("schema.sparse.user", 0, "schema.sparse.user", "must be > 0"),
    ("schema.streams.click.vocab", _DELETE, "schema.streams.click.vocab", "missing required key"),
    ("schema.tasks", [], "schema.tasks", "at least one task"),
    ("workload.batch_size", -4, "workload.batch_size", "must be > 0"),
    ("workload.streams.click.weights", [1.0], "workload.streams.click", "same size"),
    ("train.lr", "fast", "train.lr", "not a number"),
    ("train.sparse_optimizer", "sgd", "train.sparse_optimizer", "not allowed"),
    ("schema_version", 7, "schema_version", "must be 1"),
]


@pytest.mark.parametrize(("path", "value", "where", "message"), BAD, ids=[b[0] for b in BAD])
def test_validation_errors_name_the_key_path(path, value, where, message):
    with pytest.raises(ConfigError) as err:
        KunlunConfig.from_dict(_set(_base(), path, value))
    assert err.value.path == where
    assert message in err.value.message


def test_interformer_family_requires_its_choices():
    data = KunlunConfig.preset("interformer-small").to_dict()
    with pytest.raises(ConfigError, match="model.streams.click.window"):
        KunlunConfig.from_dict(_set(data, "model.streams.click.window", 8))
    with pytest.raises(ConfigError, match="model.schedule"):
        KunlunConfig.from_dict(_set(data, "model.schedule", "alternate"))


def test_workload_stream_must_exist_in_schema():
    data = _base()
    data["workload"]["streams"]["purchase"] = {"lengths": [1], "weights": [1]}
    with pytest.raises(ConfigError, match="workload.streams.purchase"):
        KunlunConfig.from_dict(data)


def test_reserved_stream_names_are_refused():
    data = _base()
    data["schema"]["streams"]["head"] = {"vocab": 3}
    with pytest.raises(ConfigError, match="schema.streams.head"):
        KunlunConfig.from_dict(data)


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"), ("model: [1, 2", "not valid YAML"), ("- 1\n- 2", "expected a mapping"),
    ("model: {}\nmodel: {}", "duplicate key"),
])
def test_bad_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        KunlunConfig.from_yaml(path)
    assert str(path) in str(err.value)


def test_missing_file_and_unknown_preset():
    with pytest.raises(ConfigError, match="no such file"):
        KunlunConfig.load("missing.yaml")
    with pytest.raises(ConfigError, match="unknown model preset"):
        KunlunConfig.load("kunlun-huge")


def test_with_schema_drops_missing_streams_and_defaults_new_ones():
    config = KunlunConfig.preset("kunlun-small")
    schema = SchemaConfig(sparse={"user": 10, "item": 5}, dense=0,
                          streams={"click": StreamSchema(vocab=5), "buy": StreamSchema(vocab=5)})
    workload = copy.deepcopy(config.workload)
    workload.streams = {"click": config.workload.streams["click"], "buy": config.workload.streams["click"]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adopted = config.with_schema(schema, workload)
    assert "impression" not in adopted.model.streams
    assert any("impression" in str(w.message) for w in caught)
    assert adopted.stream_names == ["click", "buy"]
    assert adopted.model.stream("buy") == config.model.stream_defaults


@pytest.mark.parametrize("section,key,value,path", [
    ("model.rote", "t_scale", 0.0, "model.rote.t_scale"),
    ("model.streams.click", "heads", 3, "model.streams.click.heads"),
    ("workload", "batch_size", 0, "workload.batch_size"),
    ("train", "lr", -1.0, "train.lr"),
    ("schema.streams.click", "vocab", 0, "schema.streams.click.vocab"),
])
def test_one_validation_walk_checks_every_section(section, key, value, path):
    """Issue 19, item 4: a config built in memory is checked by the walk the YAML reader runs, every section of it,
    and so is the result of with_schema (not the top level only)."""
    from kunlun.model.yamlio import validate

    config = KunlunConfig.preset("kunlun-small")
    target = config
    for part in section.split("."):
        target = target[part] if isinstance(target, dict) else getattr(target, part)
    setattr(target, key, value)
    with pytest.raises(ConfigError) as e:
        validate(config)
    assert e.value.path == path
    if not section.startswith("schema"):
        with pytest.raises(ConfigError) as e:
            config.with_schema(config.schema)
        assert e.value.path == path


def test_presets_price_the_default_synthetic_data():
    from kunlun.data import synthetic_schema

    schema, workload = synthetic_schema()
    for name in preset_names():
        config = KunlunConfig.preset(name)
        assert config.schema == schema and config.workload == workload, name
