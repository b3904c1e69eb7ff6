"""What runs where: the CompSkip schedule resolved per layer and stream. Model and FLOP count both follow it.

A stream runs the layer's components while within its depth. An `hsp` whose summary no interaction reads before
the stream's next `hsp` is skipped, and sequence work after a stream's last `hsp` cannot reach the output
(nothing summarises it again), so both cost nothing; with `alternate` and an even
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
    live_hsp: dict[str, set[int]] = {}
    if m.family != "wukong":
        for name in config.stream_names:
            s = m.stream(name)
            runs = [layer for layer in range(m.num_layers) if s.runs_at(layer) and "hsp" in comps[layer]]
            # a summary no interaction reads before the stream's next hsp replaces it is never used
            live_hsp[name] = {l for i, l in enumerate(runs) if i == len(runs) - 1 or any(
                "interaction" in comps[x] for x in range(l, runs[i + 1]))}
    out = []
    for layer, c in enumerate(comps):
        streams = {}
        for name, live in live_hsp.items():
            if layer <= max(live):
                run = c & {"pffn", "swa"} | ({"hsp"} if layer in live else set())
                streams[name] = frozenset(run)
        out.append(LayerPlan(layer, streams, "interaction" in c))
    return out
