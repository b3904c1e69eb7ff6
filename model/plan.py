"""What runs where: the CompSkip schedule resolved per layer and stream. Model and FLOP count both follow it.

A stream runs the layer's components while within its depth. Sequence work after a stream's last `hsp` cannot
reach the output (nothing summarises it again), so it is skipped and costs nothing; with `alternate` and an even
number of layers that is the final `swa`. `kvgen` runs exactly when `pffn` does, and the layer's context summary
is computed exactly when some `kvgen` consumes it (an unused summary would be forward work autograd never
differentiates: with `alternate`, odd layers have none).
"""

from __future__ import annotations

from dataclasses import dataclass

from kunlun.model.config import KunlunConfig


@dataclass(frozen=True)
class LayerPlan:
    layer: int
    streams: dict[str, frozenset[str]]  # stream -> components it runs here (subset of pffn, swa, hsp)
    interaction: bool

    @property
    def summary(self) -> bool:
        return any("pffn" in comps for comps in self.streams.values())


def plan(config: KunlunConfig) -> list[LayerPlan]:
    m = config.model
    comps = [m.layer_components(layer) for layer in range(m.num_layers)]
    last_hsp = {}
    if m.family != "wukong":
        for name in config.stream_names:
            s = m.stream(name)
            runs = [layer for layer in range(m.num_layers) if s.runs_at(layer) and "hsp" in comps[layer]]
            last_hsp[name] = max(runs)
    out = []
    for layer, c in enumerate(comps):
        streams = {}
        for name, last in last_hsp.items():
            if layer <= last:
                streams[name] = frozenset(c & {"pffn", "swa", "hsp"})
        out.append(LayerPlan(layer, streams, "interaction" in c))
    return out
