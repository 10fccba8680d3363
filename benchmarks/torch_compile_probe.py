"""Does `torch.compile` speed up the batched PyTorch peer on this machine? A measurement.

    python benchmarks/torch_compile_probe.py --json benchmarks/results/torch-compile-<device>.json

The batched peer's gradient (MSGD-CR: forward loop, BPTT loop, Omega, weight GEMMs),
written as one functional graph (`gradients`, T steps unrolled by dynamo) and compiled
with `torch.compile` (inductor), against the peer as shipped (`BatchedPeer.gradients`,
eager with preallocated buffers), on the same weights and batch, alternating: per
update of R runs, seconds. The compiled graph is first checked against the eager peer.
The compile time counts inductor's on-disk cache as PyTorch leaves it (warm after a
first run on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from pascanu_jax.outputs.provenance import git_state

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_peer as tp


def gradients(W_rec, W_in, b, W_out, b_out, one_hot, labels, alpha: float):
    """(loss, Omega, dW_rec, dW_in, db, dW_out, db_out), each stacked over runs, of the
    peer's model; one_hot (R, T, B, n_in), labels (R, B). Pure: no buffers, no out=."""
    R, T, B, n = one_hot.shape
    H = W_rec.shape[-1]
    U = torch.einsum("rtbn,rnh->rtbh", one_hot, W_in) + b[:, None, None, :]
    h = torch.zeros(R, B, H, dtype=U.dtype, device=U.device)
    hs = []
    for t in range(T):
        h = torch.tanh(torch.baddbmm(U[:, t], h, W_rec))
        hs.append(h)
    S = torch.stack(hs, 1)
    logp = torch.log_softmax(torch.baddbmm(b_out[:, None, :], h, W_out), -1)
    loss = -logp.gather(-1, labels[..., None]).squeeze(-1).mean(1)
    g = (logp.exp() - torch.nn.functional.one_hot(labels, tp.N_CLASSES)) / B
    g_out, gb_out = torch.bmm(h.transpose(1, 2), g), g.sum(1)
    d = torch.bmm(g, W_out.transpose(1, 2))
    W_rec_T = W_rec.transpose(1, 2)
    a_s, d_s, back_s = [], [], []
    for t in range(T - 1, -1, -1):
        a = d * (1 - S[:, t] * S[:, t])
        d_s.append(d)
        d = torch.bmm(a, W_rec_T)
        a_s.append(a)
        back_s.append(d)
    A = torch.stack(a_s[::-1], 1)
    D = torch.stack(d_s[::-1], 1)
    back = torch.stack(back_s[::-1], 1)
    d_sq, back_sq = (D * D).sum(-1), (back * back).sum(-1)
    kept = d_sq >= tp.BOUND
    safe = torch.where(kept, d_sq, 1.0)
    excess = back_sq / safe - 1
    n_kept = kept.sum((1, 2)).clamp(min=1).to(U.dtype)
    omega = torch.where(kept, excess * excess, 0.0).sum((1, 2)) / n_kept
    v = torch.where(kept, excess / safe, 0.0) * (4 * alpha / n_kept[:, None, None])
    prev = torch.cat([torch.zeros_like(S[:, :1]), S[:, :-1]], 1) + back * v[..., None]
    A2 = A.reshape(R, T * B, H)
    g_rec = torch.bmm(prev.reshape(R, T * B, H).transpose(1, 2), A2)
    g_in = torch.bmm(one_hot.reshape(R, T * B, n).transpose(1, 2), A2)
    return loss, omega, g_rec, g_in, g_in.sum(1), g_out, gb_out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--length", type=int, default=200)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    for name in ("length", "runs", "threads", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.length < 10:
        p.error(f"--length must be >= 10, got {args.length}")
    torch.set_num_threads(args.threads)
    code = dict(git_state())  # the checkout's state at the start
    R, T, alpha = args.runs, args.length, 4.0
    wall = time.perf_counter()
    with torch.inference_mode():
        gen = torch.Generator().manual_seed(0)
        peer = tp.BatchedPeer(R, T)
        peer.init_basic_tanh(gen)
        peer.draw_batch(gen)
        named = {k: v.clone() for k, v in peer.params().items()}
        one_hot = peer.one_hot.view(R, T, peer.B, tp.N_SYMBOLS).clone()
        inputs = (*(named[k] for k in ("W_rec", "W_in", "b", "W_out", "b_out")), one_hot)
        inputs = (*inputs, peer.labels.clone(), alpha)
        compiled = torch.compile(gradients, dynamic=False)
        start = time.perf_counter()
        out = compiled(*inputs)
        compile_s = time.perf_counter() - start
        peer.gradients(alpha)
        ref = peer.grads()
        for got, key in zip(out[2:], ("W_rec", "W_in", "b", "W_out", "b_out"), strict=True):
            if not torch.allclose(got, ref[key], rtol=1e-3, atol=1e-5):
                raise SystemExit(f"compiled gradient {key} differs from the peer's")
        times: dict[str, list[float]] = {"eager_peer": [], "compiled": []}
        for _ in range(args.rounds):
            for name, fn in (
                ("eager_peer", lambda: peer.gradients(alpha)),
                ("compiled", lambda: compiled(*inputs)),
            ):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    median = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    result = {
        "provenance": {
            **code,
            "torch": torch.__version__,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "load_average": os.getloadavg(),
            "wall_s": time.perf_counter() - wall,
            "command": "python benchmarks/torch_compile_probe.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
        },
        "workload": {"method": "MSGD-CR", "length": T, "runs": R, "threads": args.threads},
        "compile_s": compile_s,
        "seconds_per_update": times,
        "median_seconds_per_update": median,
        "compiled_over_eager": median["compiled"] / median["eager_peer"],
    }
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
