"""NumPy reference port of one LED (Latent Exploration Decoding) step.

Written straight from ../shared/LED_SPEC.md ("One decoding step for one sequence")
plus the conventions fixed for led_cpp where the spec leaves freedom:

* temperature 0 = greedy: probabilities use T = 1; exploit token = C[0]; explore
  token = first argmax of P_{j*}.  The gate's q is one-hot at T = 0, so with
  exploit on a greedy step never explores (spec: T = 0 is deterministic).
* candidates C = top-k of p_0 by probability descending, ties -> lower vocab id.
* gate: explore iff explore_allowed and (not exploit or (T > 0 and u_gate < 1 - q[0])).
* draw from weights w with uniform u: index = first i with cumsum(w)[i] > u*sum(w);
  if none (rounding), the last i with w[i] > 0.  The exploit draw uses u_token on
  w = q, the explore draw uses the same u_token on w = P_{j*}.
* depth rules: "max_entropy" -> first argmax of H; "random" ->
  min(floor(u_depth * d), d - 1); "fixed" -> fixed_depth.
* A_j[c] = sum_{i<=j} max(p_i[c], 1e-6) (float32, from i = 0 upward);
  P_j = A_j / sum_c A_j[c]; H_j = -sum_c P_j[c] * log(max(P_j[c], 1e-9)).
* softmax per depth over the whole vocabulary: subtract the row max, exp, sum,
  divide.

Conventions copied from the C++ (led_math.cpp), where the spec leaves freedom: the draw
rule above (first running sum above u*total, the last positive weight on rounding), the
sequential float32 summation order, the gate's strict u_gate < 1 - q0, the random depth's
floor(u*d), and ties to the first index.  tests/test_reference_conventions.py checks each
against a second computation written differently (float64 inverse CDF, exact sums,
scipy's softmax and entropy), so the port cannot only mirror the C++.

Arithmetic is float32 throughout and every reduction is a sequential
left-to-right sum (np.cumsum(..)[-1] in float32), so the order is fixed:
  z = z_j / float32(T)          (skipped when T == 0)
  e = exp(z - max(z)); s = sum(e) (index 0 upward); p = e / s
  thr = float32(u) * sum(w)     (draw threshold, float32)
  gate: float(u_gate) < float(float32(1) - q[0])
logprob = (z_0[token] - max(z_0)) - log(s_0) in float32 (so an underflowed
probability still has a finite log-probability).

Public API
----------
softmax_rows(logits, temperature) -> float32 [d, V]
top_k_candidates(p0, k) -> int64 [k]
depth_posteriors(p, C) -> (P float32 [d, k], H float32 [d])
choose_depth(H, depth_rule, fixed_depth, u_depth) -> int
draw_index(w, u) -> int
led_trace(depth_logits, **step_kwargs) -> StepTrace   (all intermediates)
led_step(depth_logits, **step_kwargs) -> dict          (same keys as led_cpp._core.led_step)
StepTrace.token_for_depth(j) -> int                    (explore token if j* = j)
token_for_depth(depth_logits, j, *, temperature, k, u_token) -> int
token_distribution(depth_logits, *, temperature, k, exploit, explore_allowed=True,
                   depth_rule="max_entropy", fixed_depth=0) -> float64 [V]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

F32 = np.float32
CLAMP_P = F32(1e-6)  # max(p_i[c], 1e-6) in A_j
CLAMP_LOG = F32(1e-9)  # log(max(P_j[c], 1e-9)) in H_j
DEPTH_RULES = ("max_entropy", "random", "fixed")


def _seqsum(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Sequential float32 sum along `axis` (index 0 upward)."""
    x = np.asarray(x, dtype=F32)
    return np.take(np.cumsum(x, axis=axis, dtype=F32), -1, axis=axis)


def _scaled_logits(depth_logits: np.ndarray, temperature: float) -> np.ndarray:
    z = np.asarray(depth_logits, dtype=F32)
    if z.ndim == 1:
        z = z[None, :]
    if temperature > 0:
        z = z / F32(temperature)
    return z


def softmax_rows(depth_logits: np.ndarray, temperature: float) -> np.ndarray:
    """p_j = softmax(z_j / T) per row (T = 0 -> T = 1), float32, fixed order."""
    z = _scaled_logits(depth_logits, temperature)
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = _seqsum(e, axis=1)[:, None]
    return e / s


def log_softmax0(depth_logits: np.ndarray, temperature: float) -> np.ndarray:
    """log softmax(z_0 / T) over the vocabulary (T = 0 -> T = 1), float32."""
    z = _scaled_logits(depth_logits, temperature)[0]
    m = z.max()
    s = _seqsum(np.exp(z - m))
    return (z - m) - np.log(s)


def top_k_candidates(p0: np.ndarray, k: int) -> np.ndarray:
    """Top-k vocab ids of p0, probability descending, ties -> lower id first."""
    p0 = np.asarray(p0, dtype=F32)
    order = np.argsort(-p0, kind="stable")  # negation is exact; stable keeps id order
    return order[:k].astype(np.int64)


def depth_posteriors(p: np.ndarray, C: np.ndarray):
    """A_j, P_j, H_j of spec step 5 for candidates C. Returns (P [d,k], H [d])."""
    pc = np.maximum(np.asarray(p, dtype=F32)[:, C], CLAMP_P)  # [d, k]
    A = np.cumsum(pc, axis=0, dtype=F32)  # i = 0 .. j
    S = _seqsum(A, axis=1)[:, None]
    P = A / S
    H = -_seqsum(P * np.log(np.maximum(P, CLAMP_LOG)), axis=1)
    return P.astype(F32), H.astype(F32)


def choose_depth(H: np.ndarray, depth_rule: str = "max_entropy", fixed_depth: int = 0, u_depth: float = 0.0) -> int:
    d = len(H)
    if depth_rule == "max_entropy":
        return int(np.argmax(H))  # first max
    if depth_rule == "random":
        return int(min(math.floor(u_depth * d), d - 1))
    if depth_rule == "fixed":
        if not 0 <= fixed_depth < d:
            raise ValueError(f"fixed_depth {fixed_depth} out of range for d={d}")
        return int(fixed_depth)
    raise ValueError(f"unknown depth_rule {depth_rule!r}")


def draw_index(w: np.ndarray, u: float) -> int:
    """First i with cumsum(w)[i] > u*sum(w); else the last i with w[i] > 0."""
    w = np.asarray(w, dtype=F32)
    cs = np.cumsum(w, dtype=F32)
    thr = F32(u) * cs[-1]
    hit = np.flatnonzero(cs > thr)
    if hit.size:
        return int(hit[0])
    pos = np.flatnonzero(w > 0)
    return int(pos[-1]) if pos.size else len(w) - 1


def draw_margin(w: np.ndarray, u: float) -> float:
    """Relative distance of u*sum(w) from the nearest cumsum boundary (for tests:
    a draw this close to a boundary may legitimately flip under rounding)."""
    w = np.asarray(w, dtype=np.float64)
    total = w.sum()
    if total <= 0:
        return 0.0
    cs = np.concatenate([[0.0], np.cumsum(w)]) / total
    return float(np.min(np.abs(cs - u)))


@dataclass
class StepTrace:
    temperature: float
    k: int
    exploit: bool
    explore_allowed: bool
    depth_rule: str
    fixed_depth: int
    u_gate: float
    u_token: float
    u_depth: float
    p: np.ndarray  # float32 [d, V]
    logp0: np.ndarray  # float32 [V]
    C: np.ndarray  # int64 [k]
    q: np.ndarray  # float32 [k]
    P: np.ndarray  # float32 [d, k]  (always computed, for the tests)
    H: np.ndarray  # float32 [d]
    explored: bool
    depth: int
    token: int
    gate_margin: float  # (1 - q0) - u_gate

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def exploit_token(self) -> int:
        if self.greedy:
            return int(self.C[0])
        return int(self.C[draw_index(self.q, self.u_token)])

    def token_for_depth(self, j: int) -> int:
        """The explore token LED emits if j* = j."""
        Pj = self.P[j]
        if self.greedy:
            return int(self.C[int(np.argmax(Pj))])
        return int(self.C[draw_index(Pj, self.u_token)])

    def token_margin(self, j: int | None = None) -> float:
        """Rounding margin of the token draw actually used (inf when greedy)."""
        if self.greedy:
            return math.inf
        if j is None:
            j = self.depth
        w = self.P[j] if self.explored else self.q
        return draw_margin(w, self.u_token)

    def as_dict(self) -> dict:
        return {
            "token": self.token,
            "explored": self.explored,
            "depth": self.depth,
            "entropies": [float(h) for h in self.H] if self.explored else [],
            "candidates": [int(c) for c in self.C],
            "candidate_probs": [float(x) for x in self.q],
            "top1_probability": float(self.q[0]),
            "logprob": float(self.logp0[self.token]),
        }


def led_trace(
    depth_logits: np.ndarray,
    *,
    temperature: float,
    k: int,
    exploit: bool,
    explore_allowed: bool = True,
    depth_rule: str = "max_entropy",
    fixed_depth: int = 0,
    u_gate: float,
    u_token: float,
    u_depth: float = 0.0,
    candidates=None,
) -> StepTrace:
    """All intermediates of one step. ``candidates`` (tests only) replaces the port's own
    top-k with another order of near-equal candidates, so that the rest of the step can still
    be checked when two implementations' roundings order a near-tie differently."""
    z = np.asarray(depth_logits, dtype=F32)
    if z.ndim != 2:
        raise ValueError("depth_logits must be [d, n_vocab]")
    d, V = z.shape
    if not 1 <= k <= V:
        raise ValueError(f"k={k} out of range for n_vocab={V}")
    if depth_rule not in DEPTH_RULES:
        raise ValueError(f"unknown depth_rule {depth_rule!r}")
    p = softmax_rows(z, temperature)
    logp0 = log_softmax0(z, temperature)
    C = top_k_candidates(p[0], k) if candidates is None else np.asarray(candidates, dtype=np.int64)
    q = p[0][C]
    P, H = depth_posteriors(p, C)
    one_minus_q0 = float(F32(1) - q[0])
    gate_open = temperature > 0 and float(u_gate) < one_minus_q0
    explored = bool(explore_allowed and ((not exploit) or gate_open))
    tr = StepTrace(
        temperature=float(temperature),
        k=int(k),
        exploit=bool(exploit),
        explore_allowed=bool(explore_allowed),
        depth_rule=depth_rule,
        fixed_depth=int(fixed_depth),
        u_gate=float(u_gate),
        u_token=float(u_token),
        u_depth=float(u_depth),
        p=p,
        logp0=logp0,
        C=C,
        q=q,
        P=P,
        H=H,
        explored=explored,
        depth=0,
        token=-1,
        gate_margin=one_minus_q0 - float(u_gate),
    )
    if explored:
        tr.depth = choose_depth(H, depth_rule, fixed_depth, u_depth)
        tr.token = tr.token_for_depth(tr.depth)
    else:
        tr.token = tr.exploit_token()
    return tr


def led_step(depth_logits: np.ndarray, **kwargs) -> dict:
    """Same signature and result keys as led_cpp._core.led_step."""
    return led_trace(depth_logits, **kwargs).as_dict()


def token_for_depth(depth_logits: np.ndarray, j: int, *, temperature: float, k: int, u_token: float) -> int:
    tr = led_trace(depth_logits, temperature=temperature, k=k, exploit=False, u_gate=0.0, u_token=u_token)
    return tr.token_for_depth(j)


def token_distribution(
    depth_logits: np.ndarray,
    *,
    temperature: float,
    k: int,
    exploit: bool,
    explore_allowed: bool = True,
    depth_rule: str = "max_entropy",
    fixed_depth: int = 0,
) -> np.ndarray:
    """Analytic P(token) over the vocabulary when u_gate, u_token, u_depth are
    independent U[0,1): P(no explore) * q_norm + P(explore) * P_{j*} (averaged over
    j* for the "random" rule), with greedy draws as point masses. float64."""
    tr = led_trace(
        depth_logits,
        temperature=temperature,
        k=k,
        exploit=exploit,
        explore_allowed=explore_allowed,
        depth_rule=depth_rule,
        fixed_depth=fixed_depth,
        u_gate=0.0,
        u_token=0.0,
    )
    V = tr.p.shape[1]
    d = tr.P.shape[0]
    if not explore_allowed:
        p_explore = 0.0
    elif not exploit:
        p_explore = 1.0
    elif tr.greedy:
        p_explore = 0.0
    else:
        p_explore = min(max(float(F32(1) - tr.q[0]), 0.0), 1.0)

    def over_candidates(w: np.ndarray) -> np.ndarray:
        out = np.zeros(V)
        w = np.asarray(w, dtype=np.float64)
        if tr.greedy:
            out[tr.C[int(np.argmax(w))]] = 1.0
        else:
            np.add.at(out, tr.C, w / w.sum())
        return out

    dist = (1.0 - p_explore) * over_candidates(tr.q)
    if p_explore > 0:
        if depth_rule == "random":
            depths = [(j, 1.0 / d) for j in range(d)]
        else:
            depths = [(choose_depth(tr.H, depth_rule, fixed_depth, 0.0), 1.0)]
        for j, wj in depths:
            dist += p_explore * wj * over_candidates(tr.P[j])
    return dist
