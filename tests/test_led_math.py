"""Spec-parity tests of the C++ LED math unit (led_cpp._core.led_step) against the
NumPy port in tests/support/led_reference.py (written from ../shared/LED_SPEC.md).

Mismatches of the big randomized parity test are saved to
/tmp/led_math_mismatches.npz (logits_<i> + meta_<i> as JSON: the exact kwargs,
the C++ result, the port's result and the reason) so that they can be replayed.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from tests.support import led_reference as L  # noqa: E402

try:
    import led_cpp._core as _core
except ImportError:  # not installed: fall back to the in-tree package (built in place)
    sys.path.insert(0, str(HERE.parent / "python"))
    import led_cpp._core as _core  # an ImportError here is a real failure, not a skip

if not hasattr(_core, "led_step"):
    pytest.skip("led_cpp._core has no led_step yet (the C++ math unit is not bound)", allow_module_level=True)

MISMATCH_FILE = Path("/tmp/led_math_mismatches.npz")
ENTROPY_TIE = 1e-5  # spec: depths whose entropies differ by < 1e-5 are ties
ENTROPY_ATOL = 1e-5
DRAW_MARGIN = 1e-5  # a uniform this close to a cumsum / gate boundary may flip


def cpp_step(z: np.ndarray, **kw) -> dict:
    return _core.led_step(np.ascontiguousarray(z, dtype=np.float32), **kw)


def _q(x) -> np.ndarray:
    """Quantise logits to multiples of 2^-10: distinct logits are then far apart
    (no float32 near-ties between different tokens), equal ones are exact ties."""
    return (np.round(np.asarray(x, dtype=np.float64) * 1024.0) / 1024.0).astype(np.float32)


# --------------------------------------------------------------------------------------
# case generation
# --------------------------------------------------------------------------------------
KINDS = ("flat", "medium", "peaked", "ln_off", "ln_on", "equal_depths", "tied_cands", "integer", "extreme")


def gen_logits(kind: str, rng: np.random.Generator, n: int, d: int, V: int, k: int) -> np.ndarray:
    """[n, d, V] float32 depth logits of one family."""
    ar = np.arange(n)
    if kind == "flat":  # near-uniform posteriors
        return _q(rng.normal(0.0, 0.3, (n, d, V)))
    if kind == "medium":
        return _q(rng.normal(0.0, 2.0, (n, d, V)))
    if kind == "peaked":  # confident final layer, confident other depths
        z = rng.normal(0.0, 1.5, (n, d, V))
        for j in range(d):
            z[ar, j, rng.integers(0, V, n)] += rng.uniform(4.0, 14.0, n)
        return _q(z)
    if kind == "ln_off":  # earlier depths give the candidates ~0 mass
        z = rng.normal(0.0, 2.0, (n, d, V))
        z[ar, 0, rng.integers(0, V, n)] += rng.uniform(0.0, 6.0, n)
        top = np.argsort(-z[:, 0, :], axis=1, kind="stable")[:, : min(k + 4, V)]
        if d > 1:
            z[ar[:, None, None], np.arange(1, d)[None, :, None], top[:, None, :]] = -40.0
        return _q(z)
    if kind == "ln_on":  # earlier depths sharper versions of z_0
        z0 = rng.normal(0.0, 2.0, (n, 1, V))
        scale = 1.0 + 0.6 * np.arange(d)[None, :, None]
        return _q(z0 * scale + rng.normal(0.0, 0.3, (n, d, V)))
    if kind == "equal_depths":  # every depth identical: entropies tie
        z0 = _q(rng.normal(0.0, 2.0, (n, 1, V)))
        return np.repeat(z0, d, axis=1)
    if kind == "tied_cands":  # exactly tied candidate logits
        z = rng.normal(0.0, 1.0, (n, d, V))
        for i in range(n):
            m = int(rng.integers(2, min(k + 3, V) + 1))
            pos = rng.permutation(V)[:m]
            z[i, 0, pos] = 4.0
            if rng.random() < 0.5:
                z[i, 1:, :] = z[i, 0, :]  # equal depths too -> exact entropy ties
            else:
                z[i, 1:, pos] = 3.0  # tied P_j among the tied candidates
        return _q(z)
    if kind == "integer":  # massive exact ties, also across the k boundary
        return rng.integers(-3, 4, (n, d, V)).astype(np.float32)
    if kind == "extreme":  # every other token underflows to p = 0
        z = rng.normal(0.0, 1.0, (n, d, V))
        z[ar, 0, rng.integers(0, V, n)] = 150.0
        if d > 1:
            z[:, 1:, :] *= 3.0
        return _q(z)
    raise ValueError(kind)


def build_cases(seed: int = 20260201, per_cell: int = 20, total: int = 10_000):
    rng = np.random.default_rng(seed)
    cases = []
    for T in (0.0, 0.6, 1.0):
        for exploit in (True, False):
            for d in (1, 2, 8):
                for k in (1, 8, 40):
                    for kind in KINDS:
                        V = int(rng.integers(64, 201))
                        cases += _cell(rng, kind, per_cell, T, exploit, d, k, V)
    # top up to `total` with random cells
    while len(cases) < total:
        n = min(per_cell, total - len(cases))
        cases += _cell(
            rng,
            KINDS[rng.integers(len(KINDS))],
            n,
            float(rng.choice([0.0, 0.6, 1.0])),
            bool(rng.integers(2)),
            int(rng.choice([1, 2, 8])),
            int(rng.choice([1, 8, 40])),
            int(rng.integers(64, 201)),
        )
    return cases[:total]


def _cell(rng, kind, n, T, exploit, d, k, V):
    Z = gen_logits(kind, rng, n, d, V, k)
    U = rng.random((n, 3))
    U[rng.random(n) < 0.02, 1] = 0.0  # u_token exactly 0
    U[rng.random(n) < 0.02, 0] = 0.0  # u_gate exactly 0
    rule_draw = rng.random(n)
    allowed = rng.random(n) >= 0.05
    out = []
    for i in range(n):
        rule = "max_entropy" if rule_draw[i] < 0.8 else "random" if rule_draw[i] < 0.9 else "fixed"
        kw = dict(
            temperature=T,
            k=k,
            exploit=exploit,
            explore_allowed=bool(allowed[i]),
            depth_rule=rule,
            fixed_depth=int(rng.integers(d)) if rule == "fixed" else 0,
            u_gate=float(U[i, 0]),
            u_token=float(U[i, 1]),
            u_depth=float(U[i, 2]),
        )
        out.append((kind, Z[i], kw))
    return out


# --------------------------------------------------------------------------------------
# comparison of one step
# --------------------------------------------------------------------------------------
HARD, TOL_PRECISION, TOL_DEPTH_TIE = "hard", "precision", "depth_tie"


def compare_step(z: np.ndarray, kw: dict, got: dict, tr: L.StepTrace):
    """Returns (list of (severity, reason)); empty = exact agreement."""
    issues = []
    d = z.shape[0]
    k = kw["k"]
    keys = {"token", "explored", "depth", "entropies", "candidates", "candidate_probs", "top1_probability", "logprob"}
    missing = keys - set(got)
    if missing:
        return [(HARD, f"result lacks keys {sorted(missing)}")]

    cand = [int(c) for c in got["candidates"]]
    if cand != [int(c) for c in tr.C]:
        return [(HARD, f"candidates {cand} != ref {tr.C.tolist()}")]
    cp = np.asarray(got["candidate_probs"], dtype=np.float64)
    if cp.shape != (k,) or not np.allclose(cp, tr.q, rtol=1e-5, atol=1e-30):
        issues.append((HARD, f"candidate_probs {cp.tolist()} != ref {tr.q.tolist()}"))
    if not math.isclose(float(got["top1_probability"]), float(tr.q[0]), rel_tol=1e-5, abs_tol=1e-30):
        issues.append((HARD, f"top1_probability {got['top1_probability']} != ref {tr.q[0]}"))

    explored = bool(got["explored"])
    if explored != tr.explored:
        if kw["explore_allowed"] and kw["exploit"] and abs(tr.gate_margin) < DRAW_MARGIN:
            return issues + [(TOL_PRECISION, "gate flipped at a rounding boundary")]
        return issues + [(HARD, f"explored={explored} != ref {tr.explored} (1-q0 - u_gate = {tr.gate_margin:.3g})")]

    token = int(got["token"])
    depth = int(got["depth"])
    ent = list(got["entropies"])
    if not explored:
        if depth != 0:
            issues.append((HARD, f"depth {depth} != 0 on an exploit step"))
        if ent:
            issues.append((HARD, f"entropies {ent} not empty on an exploit step"))
        if token != tr.token:
            if tr.token_margin() < DRAW_MARGIN:
                issues.append((TOL_PRECISION, "exploit draw at a rounding boundary"))
            else:
                issues.append((HARD, f"exploit token {token} != ref {tr.token}"))
    else:
        H = np.asarray(ent, dtype=np.float64)
        if H.shape != (d,) or not np.allclose(H, tr.H, rtol=0, atol=ENTROPY_ATOL):
            issues.append((HARD, f"entropies {ent} != ref {tr.H.tolist()}"))
        if not 0 <= depth < d:
            return issues + [(HARD, f"depth {depth} out of range")]
        rule = kw["depth_rule"]
        if rule == "max_entropy":
            if depth != tr.depth:
                if tr.H[depth] >= tr.H.max() - ENTROPY_TIE:
                    issues.append((TOL_DEPTH_TIE, f"depth {depth} vs ref {tr.depth} (tie)"))
                else:
                    issues.append((HARD, f"depth {depth} != ref {tr.depth}, H_ref={tr.H.tolist()}"))
            if H.shape == (d,) and depth != int(np.argmax(H)):
                issues.append((HARD, f"depth {depth} is not the first argmax of the C++'s own entropies {ent}"))
        else:
            if depth != tr.depth:
                x = kw["u_depth"] * d
                if rule == "random" and abs(x - round(x)) < 1e-6:
                    issues.append((TOL_PRECISION, "random depth at a floor boundary"))
                else:
                    issues.append((HARD, f"depth {depth} != ref {tr.depth} (rule {rule})"))
        want = tr.token_for_depth(depth)
        if token != want:
            Pj = tr.P[depth].astype(np.float64)
            if tr.greedy:
                ti = cand.index(token) if token in cand else -1
                if ti >= 0 and Pj[ti] >= Pj.max() * (1 - 1e-5):
                    issues.append((TOL_PRECISION, "greedy explore near-tie in P_j*"))
                else:
                    issues.append((HARD, f"explore token {token} != ref {want} at depth {depth}"))
            elif tr.token_margin(depth) < DRAW_MARGIN:
                issues.append((TOL_PRECISION, "explore draw at a rounding boundary"))
            else:
                issues.append((HARD, f"explore token {token} != ref {want} at depth {depth}"))

    if 0 <= token < z.shape[1]:
        ref_lp = float(tr.logp0[token])
        lp = float(got["logprob"])
        if not math.isclose(lp, ref_lp, rel_tol=1e-5, abs_tol=1e-4):
            issues.append((HARD, f"logprob {lp} != ref log softmax(z0/T)[{token}] = {ref_lp}"))
    else:
        issues.append((HARD, f"token {token} out of vocabulary"))
    return issues


def _save_mismatches(records):
    arrays = {}
    for i, (z, kw, kind, got, ref, reasons) in enumerate(records[:40]):
        arrays[f"logits_{i}"] = np.asarray(z, dtype=np.float32)
        arrays[f"meta_{i}"] = np.array(
            json.dumps(
                {"kind": kind, "kwargs": kw, "cpp": got, "ref": ref, "reasons": reasons},
                default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o),
            )
        )
    np.savez_compressed(MISMATCH_FILE, **arrays)


# --------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------
def test_random_steps_match_reference():
    cases = build_cases()
    assert len(cases) == 10_000
    counts = {HARD: 0, TOL_PRECISION: 0, TOL_DEPTH_TIE: 0}
    bad = []
    n_explored = 0
    for kind, z, kw in cases:
        tr = L.led_trace(z, **kw)
        got = cpp_step(z, **kw)
        n_explored += tr.explored
        issues = compare_step(z, kw, got, tr)
        sev = {s for s, _ in issues}
        for s in sev:
            counts[s] += 1
        if HARD in sev:
            bad.append((z, kw, kind, dict(got), tr.as_dict(), [r for s, r in issues if s == HARD]))
    summary = (
        f"{counts[HARD]} hard mismatches, {counts[TOL_PRECISION]} tolerated "
        f"rounding-boundary flips, {counts[TOL_DEPTH_TIE]} tolerated depth ties, "
        f"{n_explored} exploring steps of {len(cases)}"
    )
    print(summary)
    if bad:
        _save_mismatches(bad)
        first = bad[0]
        pytest.fail(
            f"{summary}; saved to {MISMATCH_FILE}. First: kind={first[2]} "
            f"kwargs={first[1]} shape={first[0].shape}: {first[5]}"
        )
    # rounding-boundary flips should be rare (relative window 1e-5 per draw)
    assert counts[TOL_PRECISION] <= 20, summary
    assert n_explored > 3000


def test_d1_is_top_k_sampling():
    rng = np.random.default_rng(11)
    for _ in range(600):
        V = int(rng.integers(64, 201))
        k = int(rng.integers(1, 41))
        T = float(rng.choice([0.0, 0.6, 1.0]))
        z = _q(rng.normal(0.0, 1.0, (1, V)))  # every p_0 > 1e-6: the clamp is inert
        u_gate, u_token = rng.random(2)
        p0 = L.softmax_rows(z, T)[0]
        assert p0.min() > 1e-6
        C = L.top_k_candidates(p0, k)
        want = int(C[0]) if T == 0 else int(C[L.draw_index(p0[C], u_token)])
        margin = math.inf if T == 0 else L.draw_margin(p0[C], u_token)
        for exploit in (True, False):
            kw = dict(temperature=T, k=k, exploit=exploit, u_gate=float(u_gate), u_token=float(u_token))
            got = cpp_step(z, **kw)
            ref = L.led_step(z, **kw)
            if margin < DRAW_MARGIN:
                continue
            assert ref["token"] == want, (kw, ref, want)
            assert int(got["token"]) == want, (z.tolist(), kw, dict(got), want)


def test_k1_is_greedy():
    rng = np.random.default_rng(12)
    for _ in range(300):
        V = int(rng.integers(64, 201))
        d = int(rng.choice([1, 2, 8]))
        T = float(rng.choice([0.0, 0.6, 1.0]))
        z = _q(rng.normal(0.0, 2.0, (d, V))) if rng.random() < 0.7 else rng.integers(-2, 3, (d, V)).astype(np.float32)
        want = int(np.argmax(z[0]))  # first max = lowest id among ties
        kw = dict(
            temperature=T,
            k=1,
            exploit=bool(rng.integers(2)),
            u_gate=float(rng.random()),
            u_token=float(rng.random()),
            depth_rule=str(rng.choice(["max_entropy", "random"])),
            u_depth=float(rng.random()),
        )
        got = cpp_step(z, **kw)
        assert L.led_step(z, **kw)["token"] == want
        assert int(got["token"]) == want, (z.tolist(), kw, dict(got))
        assert [int(c) for c in got["candidates"]] == [want]


def test_explore_not_allowed_never_explores():
    rng = np.random.default_rng(13)
    for _ in range(200):
        z = _q(rng.normal(0.0, 0.5, (8, 100)))
        kw = dict(
            temperature=0.6,
            k=8,
            exploit=False,
            explore_allowed=False,
            u_gate=float(rng.random()),
            u_token=float(rng.random()),
        )
        got = cpp_step(z, **kw)
        assert not got["explored"] and int(got["depth"]) == 0 and list(got["entropies"]) == []
        assert int(got["token"]) == L.led_step(z, **kw)["token"]


# ---- distributions -------------------------------------------------------------------
def _chi2_sf(x: float, df: int) -> float:
    """Survival function of chi2(df): regularized upper incomplete gamma Q(df/2, x/2)."""
    a, x = df / 2.0, x / 2.0
    if x <= 0:
        return 1.0
    lg = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:  # series for P, return 1 - P
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(lg))
    b = x + 1.0 - a  # continued fraction for Q (Lentz)
    c = 1.0 / 1e-300
    dd = 1.0 / b
    h = dd
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        dd = an * dd + b
        dd = 1e-300 if abs(dd) < 1e-300 else dd
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        dd = 1.0 / dd
        delta = dd * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return math.exp(lg) * h


def chisquare_pvalue(observed: np.ndarray, expected_prob: np.ndarray) -> float:
    """Chi-square goodness of fit; bins with expected count < 5 are pooled."""
    observed = np.asarray(observed, dtype=np.float64)
    n = observed.sum()
    expected = np.asarray(expected_prob, dtype=np.float64) * n
    support = expected > 0
    assert observed[~support].sum() == 0, "tokens outside the analytic support were drawn"
    o, e = observed[support], expected[support]
    small = e < 5
    if small.any():
        o = np.append(o[~small], o[small].sum())
        e = np.append(e[~small], e[small].sum())
    e = e * (o.sum() / e.sum())
    if len(e) < 2:
        return 1.0
    try:
        from scipy.stats import chisquare

        return float(chisquare(o, e).pvalue)
    except ImportError:
        stat = float(((o - e) ** 2 / e).sum())
        return _chi2_sf(stat, len(e) - 1)


def _dist_state():
    """A fixed state where exploring clearly changes the distribution: the final layer
    is moderately confident (q0 ~ 0.4), earlier depths re-rank the candidates."""
    rng = np.random.default_rng(7)
    V, d = 96, 4
    z = rng.normal(0.0, 1.0, (d, V))
    cand = np.arange(10, 18)
    z[0, cand] = [5.0, 4.4, 4.0, 3.6, 3.3, 3.0, 2.6, 2.2]
    z[1, cand] = [3.0, 4.0, 4.2, 3.0, 2.0, 2.5, 3.5, 1.0]
    z[2, cand] = [2.0, 3.8, 4.5, 4.5, 3.0, 1.0, 3.9, 2.0]
    z[3, cand] = [4.0, 2.0, 1.0, 3.0, 4.0, 4.0, 2.0, 3.0]
    return _q(z)


@pytest.mark.parametrize("rule,exploit", [("max_entropy", True), ("max_entropy", False), ("random", True)])
def test_reference_matches_analytic_distribution(rule, exploit):
    z = _dist_state()
    kw = dict(temperature=1.0, k=8, exploit=exploit, depth_rule=rule)
    tr = L.led_trace(z, u_gate=0.0, u_token=0.0, **kw)
    if rule == "max_entropy":
        Hs = np.sort(tr.H)
        assert Hs[-1] - Hs[-2] > 1e-3, "the test state must have a clear max-entropy depth"
    dist = L.token_distribution(z, **kw)
    assert abs(dist.sum() - 1.0) < 1e-6
    # the analytic mixture, enumerated by hand from the trace
    qn = tr.q.astype(np.float64) / tr.q.astype(np.float64).sum()
    pe = (1.0 - float(tr.q[0])) if exploit else 1.0
    Pj = tr.P.astype(np.float64).mean(axis=0) if rule == "random" else tr.P[int(np.argmax(tr.H))].astype(np.float64)
    manual = np.zeros(z.shape[1])
    manual[tr.C] = (1.0 - pe) * qn + pe * Pj
    np.testing.assert_allclose(dist, manual, atol=1e-6)
    # the exploring part is really different from top-k sampling here
    assert np.abs(Pj - qn).max() > 0.05
    # sampling the port reproduces it
    rng = np.random.default_rng(101)
    n = 6000
    U = rng.random((n, 3))
    counts = np.zeros(z.shape[1])
    for ug, ut, ud in U:
        counts[L.led_trace(z, u_gate=ug, u_token=ut, u_depth=ud, **kw).token] += 1
    assert chisquare_pvalue(counts, dist) > 1e-3


@pytest.mark.parametrize(
    "rule,exploit,T", [("max_entropy", True, 1.0), ("max_entropy", False, 0.6), ("random", True, 1.0)]
)
def test_cpp_distribution_chisquare(rule, exploit, T):
    z = _dist_state()
    kw = dict(temperature=T, k=8, exploit=exploit, depth_rule=rule)
    dist = L.token_distribution(z, **kw)
    rng = np.random.default_rng(202)
    n = 20_000
    U = rng.random((n, 3))
    zc = np.ascontiguousarray(z, dtype=np.float32)
    counts = np.zeros(z.shape[1])
    for ug, ut, ud in U:
        counts[int(_core.led_step(zc, u_gate=float(ug), u_token=float(ut), u_depth=float(ud), **kw)["token"])] += 1
    p = chisquare_pvalue(counts, dist)
    assert p > 1e-3, (p, counts[counts > 0], dist[dist > 0] * n)
