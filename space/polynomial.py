"""Quadratic polynomials in a few width knobs, fitted exactly from FLOP evaluations.

Training FLOPs are a polynomial of degree <= 2 jointly in the widths (every op is a matmul between at most two
width-sized dimensions), so (n+1)(n+2)/2 evaluations on a corner design determine it exactly.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence

import numpy as np


class Quadratic:
    """m outputs, each c + sum_i b_i u_i + sum_{i<=j} a_ij u_i u_j, in scaled variables u = x / scale."""

    def __init__(self, scale: Sequence[float], coef: np.ndarray):
        self.scale = list(scale)
        n = len(self.scale)
        self.pairs = [(i, j) for i in range(n) for j in range(i, n)]
        self.coef = coef  # rows: 1, u_0..u_{n-1}, u_i u_j (pairs); columns: outputs

    @classmethod
    def fit(cls, f: Callable[[list[int]], list[float]], origin: Sequence[int], step: Sequence[int]) -> Quadratic:
        n = len(origin)
        points = [list(origin)]
        for i in range(n):
            for k in (1, 2):
                points.append([o + (k * s if d == i else 0) for d, (o, s) in enumerate(zip(origin, step))])
        for i, j in itertools.combinations(range(n), 2):
            points.append([o + (s if d in (i, j) else 0) for d, (o, s) in enumerate(zip(origin, step))])
        values = np.array([f(p) for p in points], dtype=float)
        poly = cls(step, np.zeros((1, 1)))
        design = np.array([poly._features([x / s for x, s in zip(p, step)]) for p in points])
        poly.coef = np.linalg.solve(design, values)
        return poly

    @classmethod
    def fit_separable(cls, f: Callable[[list[int]], list[float]], origin: Sequence[int],
                      step: Sequence[int]) -> Quadratic:
        """Fit with 6 evaluations instead of (n+1)(n+2)/2, for FLOPs that split into parts each quadratic in two
        variables: output k >= 1 (a stream) in (x_0, x_k), the rest of output 0 (the context) in (x_0, x_{n-1}).
        All variables but x_0 move together, so every part sees a full two-variable design."""
        n = len(origin)
        design = [(0, 0), (1, 0), (2, 0), (0, 1), (0, 2), (1, 1)]
        u0 = [o / s for o, s in zip(origin, step)]
        values = [f([o + (a if d == 0 else b) * s for d, (o, s) in enumerate(zip(origin, step))])
                  for a, b in design]
        poly = cls(step, np.zeros((1, 1)))
        index = {pair: 1 + n + i for i, pair in enumerate(poly.pairs)}
        coef = np.zeros((1 + n + len(poly.pairs), n))

        def part(var: int, ys: list[float]) -> np.ndarray:
            rows = [[1.0, u0[0] + a, u0[var] + b, (u0[0] + a) ** 2, (u0[0] + a) * (u0[var] + b), (u0[var] + b) ** 2]
                    for a, b in design]
            c = np.linalg.solve(np.array(rows), np.array(ys))
            out = np.zeros(coef.shape[0])
            for value, row in zip(c, (0, 1, 1 + var, index[(0, 0)], index[(0, var)], index[(var, var)])):
                out[row] += value
            return out

        streams = range(1, n - 1)
        for k in streams:
            coef[:, k] = part(k, [v[k] for v in values])
        context = part(n - 1, [v[0] - sum(v[k] for k in streams) for v in values])
        coef[:, 0] = context + coef[:, 1:n - 1].sum(axis=1)
        poly.coef = coef
        return poly

    @property
    def coef(self) -> np.ndarray:
        return self._coef

    @coef.setter
    def coef(self, value: np.ndarray) -> None:
        self._coef = np.asarray(value, dtype=float)
        self._columns = [list(c) for c in self._coef.T]  # plain floats: small dot products beat numpy here
        self._combined: dict[tuple, list[float]] = {}

    def _features(self, x: Sequence[float]) -> list[float]:
        u = [v / s for v, s in zip(x, self.scale)]
        return [1.0, *u, *(u[i] * u[j] for i, j in self.pairs)]

    def __call__(self, x: Sequence[float]) -> list[float]:
        feats = self._features(x)
        return [sum(map(operator.mul, feats, col)) for col in self._columns]

    def output(self, x: Sequence[float], k: int) -> float:
        return sum(map(operator.mul, self._features(x), self._columns[k]))

    def solve_1d(self, x: Sequence[float], var: int, target: float, k: int,
                 minus: Sequence[int] = (), tied: dict[int, float] | None = None) -> float | None:
        """The largest x[var] >= 0 with output k (minus outputs `minus`) equal to target; None if none.
        `tied` variables move with x[var] (x[j] = ratio * x[var]), which keeps the problem quadratic."""
        key = (k, tuple(minus))
        col = self._combined.get(key)
        if col is None:
            col = self._combined[key] = list(self._coef[:, k] - self._coef[:, list(minus)].sum(axis=1))

        def g(v: float) -> float:
            y = list(x)
            y[var] = v
            for j, ratio in (tied or {}).items():
                y[j] = ratio * v
            return sum(map(operator.mul, self._features(y), col))

        s = self.scale[var]
        g0, g1, g2 = g(0.0), g(s), g(2 * s)
        a, c = (g2 - 2 * g1 + g0) / 2, g0 - target
        b = g1 - g0 - a
        if abs(a) <= 1e-12 * max(abs(b), abs(c), 1.0):
            return s * (-c / b) if b > 0 and -c / b >= 0 else None
        disc = b * b - 4 * a * c
        if disc < 0:
            return None
        roots = [(-b + sgn * disc**0.5) / (2 * a) for sgn in (1, -1)]
        roots = [r for r in roots if r >= 0]
        return s * max(roots) if roots else None
