"""Hypothesis strategies: random valid configs (small, so a model builds and runs in well under a second)."""

from __future__ import annotations

from hypothesis import strategies as st

from kunlun.kernels.gdpa import ACTIVATIONS
from kunlun.model.config import COMPONENTS, KunlunConfig

SCHEMA = {
    "sparse": {"user": 50, "item": 80, "hour": 24},
    "dense": 2,
    "streams": {"click": {"vocab": 80, "side": {"category": 7}}, "impression": {"vocab": 80}},
    "tasks": ["click", "conversion"],
}
WORKLOAD = {
    "batch_size": 16,
    "streams": {"click": {"lengths": [0, 1, 5, 19], "weights": [1, 1, 2, 1]},
                "impression": {"lengths": [3, 40], "weights": [3, 1]}},
}


@st.composite
def streams(draw, num_layers: int, family: str) -> dict:
    heads = draw(st.sampled_from([1, 2]))
    s = {
        "d": heads * draw(st.sampled_from([4, 8])),
        "heads": heads,
        "kv_len": draw(st.integers(1, 9)),
        "seeds": draw(st.integers(1, 6)),
        "summary_tokens": draw(st.integers(1, 3)),
        "kron_rank": draw(st.integers(1, 3)),
        "max_len": draw(st.sampled_from([8, 25, 64])),
    }
    if family == "interformer":
        s.update(window=None, swa_activation="softmax", pffn_activation="identity", pooling="pma")
        return s
    per_layer = draw(st.booleans())
    window = st.one_of(st.none(), st.integers(0, min(12, s["max_len"] - 1)))  # a wider window is bad input
    s["window"] = draw(st.lists(window, min_size=num_layers, max_size=num_layers)) if per_layer else draw(window)
    s["depth"] = draw(st.one_of(st.none(), st.integers(1, num_layers)))
    for key in ("pffn_activation", "swa_activation", "hsp_activation"):
        s[key] = draw(st.sampled_from(ACTIVATIONS))
    s["pooling"] = draw(st.sampled_from(["hsp", "pma"]))
    return s


@st.composite
def configs(draw) -> KunlunConfig:
    family = draw(st.sampled_from(["kunlun", "kunlun", "interformer", "wukong"]))
    num_layers = draw(st.integers(1, 4))
    if family == "interformer":
        schedule = "none"
    else:
        schedule = draw(st.one_of(st.sampled_from(["none", "alternate"]), st.lists(
            st.frozensets(st.sampled_from(COMPONENTS)), min_size=num_layers, max_size=num_layers)))
        if not isinstance(schedule, str):
            schedule = [sorted(c | ({"hsp"} if i == 0 else set())) for i, c in enumerate(schedule)]
    names = draw(st.sampled_from([["click"], ["click", "impression"]]))
    model = {
        "family": family,
        "d_model": draw(st.sampled_from([8, 12, 16])),
        "embedding_dim": draw(st.sampled_from([4, 8])),
        "share_embeddings": draw(st.booleans()),
        "time_embedding": draw(st.booleans()),
        "recency_embedding": draw(st.booleans()),
        "num_layers": num_layers,
        "schedule": schedule,
        "dense_tokens": draw(st.integers(0, 2)),
        "summary_tokens": draw(st.integers(1, 5)),
        "kvgen": {"kind": "interformer" if family == "interformer"
                  else draw(st.sampled_from(["tokens", "lowrank", "interformer"])), "rank": draw(st.integers(1, 4))},
        "interaction": {"experts": draw(st.integers(1, 3)), "layers": draw(st.integers(1, 2)),
                        "fm_rank": draw(st.integers(1, 4)), "mlp_hidden": draw(st.sampled_from([8, 16]))},
        "head": {"hidden": 8, "summary_tokens": draw(st.integers(1, 3))},
        "streams": {n: draw(streams(num_layers, family)) for n in names},
    }
    model["stream_defaults"] = draw(streams(num_layers, family))
    schema = {**SCHEMA, "streams": {n: SCHEMA["streams"][n] for n in ["click", "impression"]}}
    return KunlunConfig.from_dict({"model": model, "schema": schema, "workload": WORKLOAD})
