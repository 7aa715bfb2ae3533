"""Problem 2: for fixed ``N, M, T``, the reserve ``Q`` that maximises (2a) or equalises (2b) the
surge and prosumer QoS, by enumeration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drbalance.planning.hybrid_supply.checks import check_count
from drbalance.planning.hybrid_supply.qos import qos_bad, qos_surge
from drbalance.planning.hybrid_supply.use_cases import RequestProbabilities


@dataclass(frozen=True)
class Problem2Solution:
    """Best split of ``M`` items for fixed ``N, M, T``: ``q_max`` (2a) and ``q_eq`` (2b).

    ``qos_s``/``qos_b``: arrays of shape ``(M + 1,)`` over ``Q = 0..M`` (probabilities).
    """

    N: int
    M: int
    T: int
    probs: RequestProbabilities
    q_max: int
    q_eq: int
    qos_s: np.ndarray
    qos_b: np.ndarray

    def rows(self) -> list[dict]:
        """Two Table 5 rows: ``problem`` "max" / "eq", ``Q``, ``qos_s``, ``qos_b`` (percent) and more."""
        out = []
        for name, q in (("max", self.q_max), ("eq", self.q_eq)):
            s, b = 100.0 * float(self.qos_s[q]), 100.0 * float(self.qos_b[q])
            out.append(
                {
                    "N": self.N,
                    "M": self.M,
                    "T": self.T,
                    "problem": name,
                    "Q": q,
                    "q_over_m": 100.0 * q / self.M,
                    "qos_s": s,
                    "qos_b": b,
                    "average": 0.5 * (s + b),
                }
            )
        return out


def solve_problem2(N: int, M: int, T: int, probs: RequestProbabilities) -> Problem2Solution:
    """Enumerate ``Q = 0..M``: 2a ``argmax QoS_s + QoS_b``, 2b ``argmin |QoS_s - QoS_b|``
    (ties: smallest ``Q``).  ``N, M, T`` counts."""
    N = check_count("N", N, minimum=1)
    M = check_count("M", M, minimum=1)
    T = check_count("T", T, minimum=0)
    Q = np.arange(M + 1)
    s = np.asarray(qos_surge(M, T, Q, N, probs.p_s), dtype=float)
    b = np.asarray(qos_bad(Q, T, probs.p_b), dtype=float)
    return Problem2Solution(
        N=N,
        M=M,
        T=T,
        probs=probs,
        q_max=int(np.argmax(s + b)),
        q_eq=int(np.argmin(np.abs(s - b))),
        qos_s=s,
        qos_b=b,
    )
