"""The NumPy port (led_reference.py) copies some conventions from the C++ where the spec leaves
freedom (draw rule, float32 summation order, first-index ties). Each is checked here against a
second computation written differently, so that port and C++ agreeing is not one convention
checked against itself."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tests.support import led_reference as L  # noqa: E402

scipy_special = pytest.importorskip("scipy.special")
scipy_stats = pytest.importorskip("scipy.stats")

RNG_SEED = 1234


def _weights(rng, n):
    kind = rng.integers(3)
    if kind == 0:
        return rng.random(n).astype(np.float32)
    if kind == 1:  # peaked, with zeros
        w = np.exp(rng.normal(0, 4, n)).astype(np.float32)
        w[rng.random(n) < 0.3] = 0
        if not w.any():
            w[0] = 1
        return w
    return np.full(n, 1.0 / n, dtype=np.float32)  # exact ties


def test_draw_rule_is_the_inverse_cdf():
    """First i whose running sum exceeds u*total == the float64 inverse CDF, wherever u is not
    within rounding of a boundary; the index always has positive weight."""
    rng = np.random.default_rng(RNG_SEED)
    checked = 0
    for _ in range(3000):
        n = int(rng.integers(1, 40))
        w = _weights(rng, n)
        u = float(rng.random()) if rng.random() < 0.95 else float(np.nextafter(1.0, 0.0))
        got = L.draw_index(w, u)
        assert w[got] > 0
        cdf = np.cumsum(w.astype(np.float64)) / float(np.sum(w, dtype=np.float64))
        expected = min(int(np.searchsorted(cdf, u, side="right")), n - 1)
        while w[expected] == 0:  # a zero weight never holds the boundary a draw falls past
            expected -= 1
        if L.draw_margin(w, u) > 1e-5:
            assert got == expected, (w, u)
            checked += 1
    assert checked > 2400


def test_sequential_float32_sum_is_within_its_error_bound():
    rng = np.random.default_rng(RNG_SEED + 1)
    for _ in range(500):
        x = (rng.random(int(rng.integers(1, 3000))) * 10 ** rng.uniform(-8, 2)).astype(np.float32)
        exact = math.fsum(float(v) for v in x)
        bound = len(x) * float(np.finfo(np.float32).eps) * float(np.abs(x.astype(np.float64)).sum())
        assert abs(float(L._seqsum(x)) - exact) <= bound


def test_softmax_matches_scipy():
    rng = np.random.default_rng(RNG_SEED + 2)
    for temperature in (0.0, 0.3, 0.6, 1.0, 1.7):
        z = (rng.normal(0, 5, (4, 300))).astype(np.float32)
        expected = scipy_special.softmax(z.astype(np.float64) / (temperature or 1.0), axis=1)
        np.testing.assert_allclose(L.softmax_rows(z, temperature), expected, rtol=2e-5, atol=1e-12)


def test_posteriors_and_entropies_match_a_float64_loop():
    """A_j, P_j, H_j from plain Python loops in float64 and scipy's entropy."""
    rng = np.random.default_rng(RNG_SEED + 3)
    for _ in range(300):
        d, k, V = int(rng.integers(1, 9)), int(rng.integers(1, 17)), 64
        p = scipy_special.softmax(rng.normal(0, rng.uniform(0.1, 8), (d, V)), axis=1).astype(np.float32)
        C = L.top_k_candidates(p[0], k)
        P, H = L.depth_posteriors(p, C)
        accumulated = [0.0] * k
        for j in range(d):
            for c in range(k):
                accumulated[c] += max(float(p[j, C[c]]), 1e-6)
            total = sum(accumulated)
            posterior = [a / total for a in accumulated]
            np.testing.assert_allclose(P[j], posterior, rtol=1e-5)
            clamped = -sum(x * math.log(max(x, 1e-9)) for x in posterior)
            assert abs(float(H[j]) - clamped) <= 1e-5
            assert abs(float(H[j]) - float(scipy_stats.entropy(posterior))) <= 1e-5


def test_ties_go_to_the_first_index():
    rng = np.random.default_rng(RNG_SEED + 4)
    for _ in range(2000):
        H = rng.integers(0, 3, int(rng.integers(1, 9))).astype(np.float32)  # many exact ties
        assert L.choose_depth(H) == min(j for j, h in enumerate(H) if h == H.max())
        p0 = rng.integers(0, 4, 50).astype(np.float32)
        k = int(rng.integers(1, 50))
        by_rule = sorted(range(50), key=lambda i: (-float(p0[i]), i))[:k]
        assert list(L.top_k_candidates(p0, k)) == by_rule


def test_gate_and_random_depth_conventions():
    rng = np.random.default_rng(RNG_SEED + 5)
    for _ in range(2000):
        d = int(rng.integers(1, 9))
        u = float(rng.random())
        depth = L.choose_depth(np.zeros(d, np.float32), "random", 0, u)
        assert depth == min(int(u * d), d - 1) and 0 <= depth < d
        assert L.choose_depth(np.zeros(d, np.float32), "random", 0, float(np.nextafter(1.0, 0.0))) == d - 1
    z = np.array([[2.0, 1.0, 0.0, -1.0]], dtype=np.float32)
    q0 = float(L.softmax_rows(z, 1.0)[0, 0])
    for u_gate, explores in ((0.0, True), (1 - q0 - 1e-4, True), (1 - q0 + 1e-4, False), (0.999, False)):
        trace = L.led_trace(z, temperature=1.0, k=2, exploit=True, u_gate=u_gate, u_token=0.5)
        assert trace.explored == explores
    # T = 0: q is one-hot, the gate never opens (LED_SPEC: T = 0 is deterministic)
    assert not L.led_trace(z, temperature=0.0, k=2, exploit=True, u_gate=0.0, u_token=0.5).explored
    assert L.led_trace(z, temperature=0.0, k=2, exploit=False, u_gate=0.99, u_token=0.5).explored
