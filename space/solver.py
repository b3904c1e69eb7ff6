"""The budget solver: Allocation -> KunlunConfig whose training FLOPs per example land on the budget.

Variables: the context width `d_model`, each stream's width `d_e` (coarse, on hardware-friendly multiples
that the stream's heads divide) and one fine knob (`interaction.mlp_hidden` or `head.hidden`, any integer).
Per structure (the allocation without its shares) the FLOPs are fitted once as a quadratic in these
variables (exact: see polynomial.py); a solve is then arithmetic: Gauss-Seidel on the continuous widths so
each branch gets its share, every floor/ceil rounding of the widths, the fine knob in closed form for the
total, and the rounding whose realised shares are closest to the sampled ones wins.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass, field

from kunlun.model.config import InteractionConfig, KunlunConfig, StreamConfig
from kunlun.model.family import FAMILIES
from kunlun.model.yamlio import ConfigError, validate
from kunlun.space.allocation import Allocation
from kunlun.space.flops import FlopFn, count_flop_vector
from kunlun.space.polynomial import Quadratic
from kunlun.space.space import SearchSpace

_CACHE_SIZE = 4096
_SWEEPS = 4  # Gauss-Seidel sweeps: the branches couple only weakly (kvgen, interaction inputs)


@dataclass
class Solution:
    allocation: Allocation
    config: KunlunConfig | None = None
    reason: str | None = None  # why the allocation cannot land (None when feasible)
    kind: str | None = None  # too_small | too_large | rounding | share | invalid
    train_flops_per_example: float = math.nan  # as the solver predicts it
    seq_share: float = math.nan  # realised share
    b200_us_per_example: float = math.nan  # predicted, when the budget is B200 time (time_solver.py)
    widths: dict[str, int] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return self.config is not None


@dataclass
class _Structure:
    poly: Quadratic | None
    reason: str | None
    multiples: list[int]  # per variable (d_model, streams..., fine)
    bounds: list[tuple[int, int]]


class BudgetSolver:
    def __init__(self, space: SearchSpace, budget: float | None = None, flop_fn: FlopFn = count_flop_vector):
        self.space = space
        self.budget = float(budget if budget is not None else space.spec.budget.amount)
        self.tolerance = space.spec.budget.tolerance
        self.flop_fn = flop_fn
        self._cache: OrderedDict[tuple, _Structure] = OrderedDict()

    # -- config construction --------------------------------------------------------------------------------------
    def build(self, alloc: Allocation, x: list[int]) -> KunlunConfig:
        """The config of an allocation at widths x = [d_model, d_stream..., fine]; not validated."""
        base = self.space.base
        model = copy.copy(base.model)
        model.family = alloc.family
        model.num_layers = alloc.num_layers
        model.schedule = alloc.schedule if isinstance(alloc.schedule, str) else [list(s) for s in alloc.schedule]
        model.d_model = int(x[0])
        model.interaction = InteractionConfig(experts=alloc.experts, layers=base.model.interaction.layers,
                                              fm_rank=alloc.fm_rank, mlp_hidden=base.model.interaction.mlp_hidden)
        model.head = copy.copy(base.model.head)
        if self._fine_name(alloc) == "mlp_hidden":
            model.interaction.mlp_hidden = int(x[-1])
        else:
            model.head.hidden = int(x[-1])
        family = FAMILIES[alloc.family]
        if family.kvgen is not None:
            model.kvgen = dataclasses.replace(base.model.kvgen, kind=family.kvgen)
        model.stream_defaults = dataclasses.replace(base.model.stream_defaults, **family.stream_settings)
        model.streams = {}
        for i, (name, s) in enumerate(alloc.streams.items()):
            ref = base.model.stream(name)
            max_len = s.max_len or ref.max_len
            # a window as wide as the sampled history sees all of it: that is full attention (the same pairs), and the
            # config accepts only windows narrower than max_len
            windows = [None if w is not None and w >= max_len else w
                       for w in (s.window if isinstance(s.window, tuple) else (s.window,))]
            window = windows if isinstance(s.window, tuple) else windows[0]
            sc = StreamConfig(d=int(x[1 + i]), heads=s.heads, kv_len=s.kv_len, seeds=s.seeds,
                              summary_tokens=s.summary_tokens, kron_rank=ref.kron_rank, window=window,
                              depth=s.depth, max_len=max_len, pffn_activation=ref.pffn_activation,
                              swa_activation=ref.swa_activation, hsp_activation=ref.hsp_activation,
                              pooling=ref.pooling)
            model.streams[name] = dataclasses.replace(sc, **family.stream_settings)
        return KunlunConfig(model=model, schema=base.schema, workload=base.workload, train=base.train)

    # -- structure: multiples, bounds, polynomial ------------------------------------------------------------------
    def _structure(self, alloc: Allocation) -> _Structure:
        key = alloc.structure()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        st = self._fit(alloc)
        self._cache[key] = st
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return st

    def _fit(self, alloc: Allocation) -> _Structure:
        sv = self.space.spec.solver
        multiples = [sv.width_multiple]
        multiples += [math.lcm(sv.width_multiple, s.heads * sv.head_dim_multiple) for s in alloc.streams.values()]
        bounds = [(math.ceil(sv.min_width / m) * m, sv.max_width // m * m) for m in multiples]
        multiples.append(1)
        bounds.append((sv.fine_min, sv.fine_max))
        for (lo, hi), (name, m) in zip(bounds, zip(["d_model", *alloc.streams], multiples)):
            if lo > hi:
                return _Structure(None, f"width of {name} must be a multiple of {m}: none lies in "
                                  f"[{sv.min_width}, {sv.max_width}]", multiples, bounds)
        # A stream as wide as d_model skips its projection to d_model (a jump off the polynomial), so the design
        # keeps every stream wider than every d_model it uses.
        d0 = 2 * multiples[0]
        origin = [d0] + [(4 * multiples[0] // m + 1) * m for m in multiples[1:-1]] + [64]
        steps = multiples[:-1] + [32]
        try:
            validate(self.build(alloc, origin))
        except ConfigError as e:
            return _Structure(None, f"invalid structure: {e}", multiples, bounds)
        def f(p: list[int]) -> list[float]:
            return self.flop_fn(self.build(alloc, p))

        poly = Quadratic.fit_separable(f, origin, steps)
        probe = [o + 3 * s for o, s in zip(origin, steps)]
        if not all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(poly(probe), f(probe))):
            poly = Quadratic.fit(f, origin, steps)  # the FLOPs do not split by branch: the full design
        return _Structure(poly, None, multiples, bounds)

    # -- solve ---------------------------------------------------------------------------------------------------
    def reach(self, alloc: Allocation) -> tuple[float, float] | None:
        """(narrowest, widest) training FLOPs per example that the allocation's structure can have, whatever the
        budget; None when the structure is invalid."""
        st = self._structure(alloc)
        if st.poly is None:
            return None
        return st.poly.output([b[0] for b in st.bounds], 0), st.poly.output([b[1] for b in st.bounds], 0)

    def extremes(self, alloc: Allocation) -> tuple[KunlunConfig, KunlunConfig] | None:
        """The narrowest and the widest config of the allocation's structure (not validated: for pricing the ends of
        its range); None when the structure is invalid."""
        st = self._structure(alloc)
        if st.poly is None:
            return None
        return self.build(alloc, [b[0] for b in st.bounds]), self.build(alloc, [b[1] for b in st.bounds])

    def solve(self, alloc: Allocation) -> Solution:
        return self.solve_flops(alloc, self.budget)

    def solve_flops(self, alloc: Allocation, B: float) -> Solution:
        """Widths that land the allocation on B training FLOPs per example (pure: the budget is an argument)."""
        st = self._structure(alloc)
        if st.poly is None:
            return Solution(alloc, reason=st.reason, kind="invalid")
        poly, tol = st.poly, self.tolerance
        n_streams = len(alloc.streams)
        fine_var = n_streams + 1
        shares = [s.share for s in alloc.streams.values()]
        lo_x = [b[0] for b in st.bounds]
        hi_x = [b[1] for b in st.bounds]
        smallest, largest = poly.output(lo_x, 0), poly.output(hi_x, 0)
        if smallest > B * (1 + tol):
            return Solution(alloc, reason=f"budget too small: the narrowest config of this structure needs "
                            f"{smallest:.4g} FLOPs/example > {B:.4g}", kind="too_small")
        if largest < B * (1 - tol):
            return Solution(alloc, reason=f"budget too large: the widest config of this structure needs "
                            f"{largest:.4g} FLOPs/example < {B:.4g}", kind="too_large")
        x = self._continuous(poly, alloc, shares, st, B)
        best = self._round(poly, alloc, shares, st, x, fine_var, B, reach=1)
        if best is None:
            best = self._round(poly, alloc, shares, st, x, fine_var, B, reach=2)
        if best is None:
            return Solution(alloc, reason=f"no rounding of the widths lands within {tol:.0%} of {B:.4g} FLOPs with "
                            f"{self._fine_name(alloc)} in [{lo_x[-1]}, {hi_x[-1]}]", kind="rounding")
        xr, total, seq = best
        share_tol = self.space.spec.solver.share_tolerance
        if n_streams and abs(seq - alloc.target_seq_share) > share_tol:
            return Solution(alloc, reason=f"sequence share {seq:.3f} is more than {share_tol} from the sampled "
                            f"{alloc.target_seq_share:.3f}", kind="share", train_flops_per_example=total, seq_share=seq)
        config = self.build(alloc, xr)
        try:
            validate(config)
        except ConfigError as e:
            return Solution(alloc, reason=f"invalid config: {e}", kind="invalid", train_flops_per_example=total,
                            seq_share=seq)
        names = ["d_model", *alloc.streams, self._fine_name(alloc)]
        return Solution(alloc, config=config, train_flops_per_example=total, seq_share=seq,
                        widths=dict(zip(names, xr)))

    def _continuous(self, poly: Quadratic, alloc: Allocation, shares: list[float], st: _Structure,
                    B: float) -> list[float]:
        # The fine knob scales with d_model here (the base config's ratio), so the context branch can shrink or
        # grow as a whole; rounding then frees it to absorb the rest of the budget.
        ratio = self._fine_default(alloc) / self.space.base.model.d_model
        fine = len(shares) + 1
        x = [float(2 * m) for m in st.multiples[:-1]] + [2.0 * st.multiples[0] * ratio]
        streams = list(range(1, len(shares) + 1))
        for _ in range(_SWEEPS):
            for k, share in zip(streams, shares):
                v = poly.solve_1d(x, k, B * alloc.target_seq_share * share, k)
                x[k] = _clamp(v if v is not None else 0.0, st.bounds[k])
            v = poly.solve_1d(x, 0, B * (1 - alloc.target_seq_share), 0, minus=streams, tied={fine: ratio})
            x[0] = _clamp(v if v is not None else 0.0, st.bounds[0])
            x[fine] = ratio * x[0]
        return x

    def _round(self, poly: Quadratic, alloc: Allocation, shares: list[float], st: _Structure, x: list[float],
               fine_var: int, B: float, reach: int) -> tuple[list[int], float, float] | None:
        """Every rounding of the stream widths; for each, d_model re-solved for the total and rounded too, then
        the fine knob in closed form. The candidate closest to the sampled shares wins."""
        ratio = x[fine_var] / x[0] if x[0] else 1.0
        stream_options = [_neighbours(x[k], st.multiples[k], st.bounds[k], reach) for k in range(1, fine_var)]
        best, best_score = None, math.inf
        for widths in itertools.product(*stream_options):
            y = [x[0], *widths, x[fine_var]]
            v = poly.solve_1d(y, 0, B, 0, tied={fine_var: ratio})
            for d_model in _neighbours(v if v is not None else 0.0, st.multiples[0], st.bounds[0], reach):
                if d_model in widths:
                    continue  # off the polynomial (see _fit); a neighbouring width lands instead
                candidate = self._land(poly, [d_model, *widths, 0], fine_var, st.bounds[fine_var], B)
                if candidate is None:
                    continue
                total, out = candidate
                seq = sum(out[1:]) / out[0]
                score = abs(seq - alloc.target_seq_share)
                if len(shares) > 1 and sum(out[1:]) > 0:
                    score += 0.5 * sum(abs(o / sum(out[1:]) - s) for o, s in zip(out[1:], shares))
                if score < best_score:
                    best, best_score = (list(total), out[0], seq), score
        return best

    def _land(self, poly: Quadratic, xr: list[int], fine_var: int, bounds: tuple[int, int],
              B: float) -> tuple[list[int], list[float]] | None:
        """The fine knob that puts the total on the budget B (a multiple of 8 when that lands too)."""
        tol = self.tolerance
        v = poly.solve_1d(xr, fine_var, B, 0)
        if v is None:
            return None
        for fine in (8 * round(v / 8), round(v)):
            if bounds[0] <= fine <= bounds[1]:
                xr[fine_var] = fine
                out = poly(xr)
                if abs(out[0] - B) <= tol * B:
                    return list(xr), out
        return None

    def _fine_name(self, alloc: Allocation) -> str:
        """The configured fine knob, unless no layer runs the interaction (then the head's width)."""
        if isinstance(alloc.schedule, tuple) and not any("interaction" in layer for layer in alloc.schedule):
            return "head_hidden"
        return self.space.spec.solver.fine

    def _fine_default(self, alloc: Allocation) -> int:
        m = self.space.base.model
        return m.interaction.mlp_hidden if self._fine_name(alloc) == "mlp_hidden" else m.head.hidden


def _clamp(v: float, bounds: tuple[int, int]) -> float:
    return min(max(v, bounds[0]), bounds[1])


def _neighbours(v: float, m: int, bounds: tuple[int, int], reach: int) -> list[int]:
    """The `reach` multiples of m below v and above it, within bounds."""
    lo, hi = bounds
    base = math.floor(v / m)
    cands = {min(max((base + k) * m, lo), hi) for k in range(1 - reach, reach + 1)}
    return sorted(cands)
