"""What runs where: the CompSkip schedule resolved into sites. Model, FLOP and parameter counts all walk it.

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
class Site:  # one module of one layer; plan() lists them in execution order
    layer: int
    stream: str | None  # None: the context branch (summary, interaction)
    component: str  # summary | kvgen | pffn | swa | hsp | interaction
    window: int | None = None  # the swa's half-window

    @property
    def key(self) -> str:
        """The module key (DESIGN.md): profiler range, FLOP report and cost model row."""
        where = "" if self.component == "interaction" else f"{self.stream or 'ctx'}."
        return f"L{self.layer}.{where}{self.component}"

    @property
    def slot(self) -> str:
        """The module's name in its ModuleDict (which cannot contain '.'); state-dict names depend on it."""
        return str(self.layer) if self.stream is None else f"{self.layer}_{self.stream}"


def plan(config: KunlunConfig) -> list[Site]:
    m = config.model
    comps = [m.layer_components(layer) for layer in range(m.num_layers)]
    live_hsp: dict[str, set[int]] = {}
    for name in config.sequence_streams:
        s = m.stream(name)
        runs = [layer for layer in range(m.num_layers) if s.runs_at(layer) and "hsp" in comps[layer]]
        # a summary no interaction reads before the stream's next hsp replaces it is never used
        live_hsp[name] = {l for i, l in enumerate(runs) if i == len(runs) - 1 or any(
            "interaction" in comps[x] for x in range(l, runs[i + 1]))}
    sites = []
    for layer, c in enumerate(comps):
        streams = [(name, live) for name, live in live_hsp.items() if layer <= max(live)]
        if "pffn" in c and streams:
            sites.append(Site(layer, None, "summary"))
        for name, live in streams:
            if "pffn" in c:
                sites += [Site(layer, name, "kvgen"), Site(layer, name, "pffn")]
            if "swa" in c:
                sites.append(Site(layer, name, "swa", m.stream(name).window_at(layer)))
            if layer in live:
                sites.append(Site(layer, name, "hsp"))
        if "interaction" in c:
            sites.append(Site(layer, None, "interaction"))
    return sites
