from __future__ import annotations

import ablate_synthetic
import pytest

from kunlun.data.spec import open_data
from kunlun.model import KunlunModel
from kunlun.model.config import KunlunConfig


def test_a_removed_stream_is_gone_from_data_schema_workload_and_model():
    data = open_data("synthetic", examples=3000)
    without = ablate_synthetic._without(data, "click")
    assert set(without.streams) == set(without.schema.streams) == set(without.workload.streams) == {"impression"}
    assert set(data.streams) == {"click", "impression"}  # the original is untouched
    with pytest.warns(UserWarning, match="'click' is not in the data; dropped"):
        config = KunlunConfig.preset("kunlun-small").with_schema(without.schema, without.workload)
    assert config.stream_names == ["impression"] and "click" not in KunlunModel(config).embed


def test_variant_edits_reach_every_stream():
    config = KunlunConfig.preset("kunlun-small")
    ablate_synthetic._window(0)(config)
    ablate_synthetic._max_len(4)(config)
    assert all(s.window == 0 and s.max_len == 4 for s in config.model.streams.values())
    assert set(ablate_synthetic.VARIANTS) >= {"kunlun-small", "no click stream", "no impression stream"}
