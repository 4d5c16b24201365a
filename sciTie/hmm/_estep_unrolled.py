"""The lane recursions written out for one number of states, state vectors in registers.

With ``K`` known only at run time, a step of :mod:`sciTie.hmm._estep_lanes` keeps its state
vectors in memory (two loads per fused multiply-add) and its loop bodies spill. Here the
numba source of the forward step and of the smoothing step is generated for a given ``K``:
every per-state quantity is a local vector (``p0 .. p{K-1}``), every loop over states is
unrolled, and the entries of ``A`` are broadcast once per call. The arithmetic is that of
the generic steps, operation for operation (the same two interleaved partial sums, the same
order, and no licence to contract a product and a sum into one fused operation), so the
results are bitwise equal; only the places where values live change.

The source is compiled once per ``K`` (:func:`step_functions` keeps the Python functions in
a dict; numba compiles them into each caller specialised for that ``K``).
"""
from __future__ import annotations

from . import _vec4

__all__ = ["step_functions"]

_COMPILED: dict = {}


def _forward_source(K: int, steps: int, guard: float) -> str:
    L = 4
    a = [f"    a{k}_{j} = splat4(A[{k}, {j}])" for k in range(K) for j in range(K)]
    body = []
    for j in range(K):  # pred_j = prev @ A[:, j]
        terms = [(f"p{k}", f"a{k}_{j}") for k in range(K)]
        for i, (p, c) in enumerate(terms):
            acc = "u" if i % 2 == 0 else "w"
            body.append(f"{acc} = fma4({p}, {c}, zero)" if i < 2 else
                        f"{acc} = fma4({p}, {c}, {acc})")
        body.append(f"q{j} = add4(u, w)" if K > 1 else f"q{j} = u")
    body.append("if evt[i] != 0:  # some lane starts a sequence here")
    body += [f"    store4(pred, {L * j}, q{j})" for j in range(K)]
    body += ["    for l in range(4):",
             "        if first[i, l] != 0:",
             f"            for j in range({K}):",
             "                pred[j, l] = startprob[j]"]
    body += [f"    q{j} = load4(pred, {L * j})" for j in range(K)]
    body += [f"v{j} = mul4(q{j}, load4(BT, {L} * ({j * steps} + i)))" for j in range(K)]
    for j in range(K):
        acc = "c0" if j % 2 == 0 else "c1"
        body.append(f"{acc} = v{j}" if j < 2 else f"{acc} = add4({acc}, v{j})")
    body.append("c = add4(c0, c1)" if K > 1 else "c = c0")
    body += [f"store4(cs, {L} * i, c)", "inv = div4(one, c)"]
    body += [f"p{j} = mul4(v{j}, inv)" for j in range(K)]
    body += ["if store:", f"    at = lbase + (s0 + i) * {K * L}"]
    body += [f"    store4(lat, at + {L * j}, p{j})" for j in range(K)]
    body += [f"if not all_above4(c, {guard!r}):"]
    body += [f"    store4(pred, {L * j}, q{j})" for j in range(K)]
    body += [f"    store4(prev, {L * j}, p{j})" for j in range(K)]
    body += ["    return i"]
    lines = [("def forward_steps(kspec, i0, n, s0, A, startprob, BT, evt, first, lat, lbase, "
              "store, prev, pred, pb, cs):"), "    one = splat4(1.0)", "    zero = splat4(0.0)",
             *a]
    lines += [f"    p{j} = load4(prev, {L * j})" for j in range(K)]
    lines += ["    for i in range(i0, n):"] + ["        " + b for b in body]
    lines += [f"    store4(prev, {L * j}, p{j})" for j in range(K)]
    lines += ["    return n"]
    return "\n".join(lines) + "\n"


def _backward_source(K: int) -> str:
    L = 4
    a = [f"    a{k}_{j} = splat4(A[{k}, {j}])" for k in range(K) for j in range(K)]
    body = ["at = lbase + (s0 + i) * " + str(K * L), f"ip = {K * L} * i"]
    for j in range(K):  # r = gamma_{s+1} / pred_{s+1}
        body += [f"r{j} = mul4(g{j}, load4(IP, ip + {L * j}))", f"store4(R, ip + {L * j}, r{j})"]
    for k in range(K):  # gnew = alpha_s * (A @ r)
        for j in range(K):
            acc = "u" if j % 2 == 0 else "w"
            body.append(f"{acc} = fma4(a{k}_{j}, r{j}, zero)" if j < 2 else
                        f"{acc} = fma4(a{k}_{j}, r{j}, {acc})")
        body.append(f"h{k} = mul4(load4(lat, at + {L * k}), {'add4(u, w)' if K > 1 else 'u'})")
    body.append("if evt[i] & 2:  # a prediction too small to divide by: the caller fixes it")
    for j in range(K):
        body += [f"    store4(g, {L * j}, g{j})", f"    store4(gnew, {L * j}, h{j})",
                 f"    store4(r, {L * j}, r{j})"]
    body.append("    return i")
    for k in range(K):
        acc = "n0" if k % 2 == 0 else "n1"
        body.append(f"{acc} = h{k}" if k < 2 else f"{acc} = add4({acc}, h{k})")
    body.append(f"inv = div4(one, {'add4(n0, n1)' if K > 1 else 'n0'})")
    for k in range(K):
        body += [f"g{k} = mul4(h{k}, inv)", f"store4(G, ip + {L * k}, g{k})"]
    body.append("if evt[i] & 1:  # lanes whose sequence ends here")
    body += [f"    store4(g, {L * k}, g{k})" for k in range(K)]
    body += ["    end_lanes(i, at, lat, last, g, G, R)"]
    body += [f"    g{k} = load4(g, {L * k})" for k in range(K)]
    lines = ["def backward_steps(kspec, i0, s0, A, lat, lbase, IP, evt, last, g, gnew, r, R, G):",
             "    one = splat4(1.0)", "    zero = splat4(0.0)", *a]
    lines += [f"    g{k} = load4(g, {L * k})" for k in range(K)]
    lines += ["    for i in range(i0, -1, -1):"] + ["        " + b for b in body]
    lines += [f"    store4(g, {L * k}, g{k})" for k in range(K)]
    lines += ["    return -1"]
    return "\n".join(lines) + "\n"


def _inverse_source(K: int, tiny: float) -> str:
    L = 4
    a = [f"    a{k}_{j} = splat4(A[{k}, {j}])" for k in range(K) for j in range(K)]
    body = [f"at = lbase + (s0 + i) * {K * L}"]
    body += [f"p{k} = load4(lat, at + {L * k})" for k in range(K)]
    body.append("cnt = zero")
    for j in range(K):  # q_j = alpha_s @ A[:, j]: one chain from k = 0, as the generic pass
        body.append(f"q = fma4(p0, a0_{j}, zero)")
        body += [f"q = fma4(p{k}, a{k}_{j}, q)" for k in range(1, K)]
        body += [f"store4(IP, {K * L} * i + {L * j}, recip_above4(q, {tiny!r}))",
                 f"cnt = count_below4(q, {tiny!r}, cnt)"]
    body.append(f"store4(small, {L} * i, cnt)")
    lines = ["def inverse_predictions(kspec, A, lat, lbase, s0, n, IP, small):",
             "    zero = splat4(0.0)", *a, "    for i in range(n):"]
    lines += ["        " + b for b in body]
    return "\n".join(lines) + "\n"


def _statistics_source(K: int, steps: int) -> str:
    L = 4
    lines = ["def chunk_statistics(kspec, n, s0, lat, lbase, R, G, XT, n_moments, xi, post, obs,",
             "                     obs2):",
             f"    base = lbase + s0 * {K * L}"]
    for k in range(K):  # row k of xi: K accumulators over the chunk's steps
        lines += [f"    x{j} = load4(xi, {L * (k * K + j)})" for j in range(K)]
        lines += ["    for i in range(n):",
                  f"        a = load4(lat, base + {K * L} * i + {L * k})"]
        lines += [f"        x{j} = fma4(a, load4(R, {K * L} * i + {L * j}), x{j})"
                  for j in range(K)]
        lines += [f"    store4(xi, {L * (k * K + j)}, x{j})" for j in range(K)]
    lines += [f"    x{k} = load4(post, {L * k})" for k in range(K)]
    lines += ["    for i in range(n):"]
    lines += [f"        x{k} = add4(x{k}, load4(G, {K * L} * i + {L * k}))" for k in range(K)]
    lines += [f"    store4(post, {L * k}, x{k})" for k in range(K)]
    lines += ["    if n_moments == 0:", "        return",
              "    for d in range(XT.shape[0]):"]
    for k0 in range(0, K, 4):  # four states at a time: eight accumulators
        ks = range(k0, min(k0 + 4, K))
        for k in ks:
            lines += [f"        m{k} = load4(obs, {L} * (d * {K} + {k}))",
                      f"        v{k} = load4(obs2, {L} * (d * {K} + {k}))"]
        lines += ["        for i in range(n):",
                  f"            x = load4(XT, {L} * (d * {steps} + i))"]
        for k in ks:
            lines += [f"            w = mul4(load4(G, {K * L} * i + {L * k}), x)",
                      f"            m{k} = add4(m{k}, w)", f"            v{k} = fma4(w, x, v{k})"]
        for k in ks:
            lines += [f"        store4(obs, {L} * (d * {K} + {k}), m{k})",
                      f"        store4(obs2, {L} * (d * {K} + {k}), v{k})"]
    return "\n".join(lines) + "\n"


def step_functions(K: int, steps: int, guard: float, tiny: float, end_lanes):
    """The forward and smoothing steps, the chunk statistics and the inverse predictions for
    ``K`` states, as Python functions for numba
    (the generic steps' arguments after ``kspec``, which they ignore); generated once per
    ``K``.

    ``end_lanes(i, at, lat, last, g, G, R)`` is the jitted fix-up of lanes whose sequence
    ends at chunk step ``i``.
    """
    key = (K, steps, guard, tiny)
    if key not in _COMPILED:
        ns = {name: getattr(_vec4, name) for name in _vec4.__all__}
        ns["end_lanes"] = end_lanes
        sources = {"forward steps": _forward_source(K, steps, guard),
                   "backward steps": _backward_source(K),
                   "statistics": _statistics_source(K, steps),
                   "inverse predictions": _inverse_source(K, tiny)}
        for name, src in sources.items():  # our generated source, nothing from outside
            exec(compile(src, f"<{name} K={K}>", "exec"), ns)  # noqa: S102
        _COMPILED[key] = (ns["forward_steps"], ns["backward_steps"], ns["chunk_statistics"],
                          ns["inverse_predictions"])
    return _COMPILED[key]
