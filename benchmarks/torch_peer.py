"""The PyTorch peer: the paper's temporal-order training as a PyTorch user writes it.

MSGD-C: `torch.nn.RNN` (tanh) + a linear read-out of the last state, cross-entropy,
`torch.nn.utils.clip_grad_norm_`, `torch.optim.SGD`.
MSGD-CR: the same network as an explicit step loop, `retain_grad()` on every state so
that one `backward()` gives dE/dh_k, then Omega (docs/protocol.md: eq. 9, squared norms)
built from the detached h_k and d_k and differentiated by autograd w.r.t. W_rec only,
added with weight alpha, then clipping and SGD.

One run at a time; data drawn with torch on the same device, per the protocol's layout.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

N_SYMBOLS, N_CLASSES = 6, 4


def temporal_order_batch(gen: torch.Generator, batch: int, length: int, device: str):
    """Inputs (T, B, 6) one-hot and labels (B,), the protocol's temporal order layout."""
    symbols = torch.randint(2, 6, (length, batch), generator=gen, device=device)
    w = length // 10
    values = torch.randint(0, 2, (2, batch), generator=gen, device=device)
    offsets = torch.randint(0, w, (2, batch), generator=gen, device=device)
    cols = torch.arange(batch, device=device)
    symbols[length // 10 + offsets[0], cols] = values[0]
    symbols[length // 2 + offsets[1], cols] = values[1]
    inputs = torch.nn.functional.one_hot(symbols, N_SYMBOLS).float()
    return inputs, values[0] + 2 * values[1]


class Net(torch.nn.Module):
    """h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), logits = W h_T + b."""

    def __init__(self, hidden: int):
        super().__init__()
        self.rnn = torch.nn.RNN(N_SYMBOLS, hidden, nonlinearity="tanh")
        self.out = torch.nn.Linear(hidden, N_CLASSES)
        for p in self.parameters():  # basic_tanh: normal(0, 0.1) weights, zero biases
            torch.nn.init.normal_(p, std=0.1) if p.dim() > 1 else torch.nn.init.zeros_(p)

    def forward(self, x):
        states, _ = self.rnn(x)
        return self.out(states[-1])


def step_msgd_c(net, opt, x, y, threshold):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), threshold)
    opt.step()
    return loss


def step_msgd_cr(net, opt, x, y, threshold, alpha, bound=1e-20):
    rnn = net.rnn
    opt.zero_grad()
    h = torch.zeros(x.shape[1], rnn.hidden_size, device=x.device)
    states = []
    for x_t in x:
        h = torch.tanh(
            x_t @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
        )
        h.retain_grad()
        states.append(h)
    loss = torch.nn.functional.cross_entropy(net.out(h), y)
    loss.backward()
    hs = torch.stack([s.detach() for s in states])
    d = torch.stack([s.grad for s in states])
    # Row form a_k W_rec^T with W_rec = weight_hh^T: the error carried one step back.
    back = (d * (1 - hs * hs)) @ rnn.weight_hh_l0
    d_sq = (d * d).sum(-1)
    keep = d_sq >= bound
    ratio = (back * back).sum(-1) / torch.where(keep, d_sq, torch.ones_like(d_sq))
    omega = torch.where(keep, (ratio - 1) ** 2, torch.zeros_like(ratio)).sum() / keep.sum().clamp(
        min=1
    )
    (alpha * omega).backward()  # only weight_hh is in this graph: the immediate derivative
    torch.nn.utils.clip_grad_norm_(net.parameters(), threshold)
    opt.step()
    return loss


def run_updates_per_second(
    method: str,
    length: int,
    runs: int,
    updates: int,
    hidden: int = 50,
    batch: int = 20,
    device: str = "cpu",
) -> float:
    """Train `runs` runs one after another for `updates` updates each; run-updates/s."""
    total = 0.0
    for seed in range(runs):
        torch.manual_seed(seed)
        gen = torch.Generator(device=device).manual_seed(seed)
        net = Net(hidden).to(device)
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        x, y = temporal_order_batch(gen, batch, length, device)
        step = step_msgd_c if method == "MSGD-C" else step_msgd_cr
        extra = () if method == "MSGD-C" else (4.0,)
        step(net, opt, x, y, 1.0, *extra)  # warm-up
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(updates):
            x, y = temporal_order_batch(gen, batch, length, device)
            step(net, opt, x, y, 1.0, *extra)
        if device != "cpu":
            torch.cuda.synchronize()
        total += time.perf_counter() - start
    return runs * updates / total


def main(argv: list[str] | None = None) -> None:
    """`python torch_peer.py METHOD LENGTH RUNS UPDATES`: prints the measurement as JSON."""
    p = argparse.ArgumentParser(description="run-updates/s of the PyTorch peer")
    p.add_argument("method", choices=["MSGD-C", "MSGD-CR"])
    p.add_argument("length", type=int)
    p.add_argument("runs", type=int)
    p.add_argument("updates", type=int)
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rate = run_updates_per_second(args.method, args.length, args.runs, args.updates, device=device)
    result = {"run_updates_per_s": rate, "torch": torch.__version__, "torch_device": device}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
