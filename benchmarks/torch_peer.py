"""The PyTorch peer: the paper's temporal-order training as a PyTorch user writes it.

MSGD-C: `torch.nn.RNN` (tanh) + a linear read-out of the last state, cross-entropy,
`torch.nn.utils.clip_grad_norm_`, `torch.optim.SGD`.
MSGD-CR: the same network as an explicit step loop, `retain_grad()` on every state so
that one `backward()` gives dE/dh_k, then Omega (docs/protocol.md: eq. 9, squared norms)
built from the detached h_k and d_k and differentiated by autograd w.r.t. W_rec only,
added with weight alpha, then clipping and SGD.

Two peers; data drawn with torch on the same device, per the protocol's layout.

The naive peer (`run_updates_per_second`): the above, one run at a time.

The nn.RNN peer (`RNNPeer`, `--rnn`, MSGD-C only): one `torch.nn.RNN` per run (cuDNN on a
GPU), all runs trained in one loop with one batch draw, one `backward()` of the summed
losses, per-run `clip_grad_norm_` and one foreach SGD step (the class says why not one
block-diagonal nn.RNN).

The batched peer (`BatchedPeer`, `--batched`): what a PyTorch user tuning for speed writes.
All R runs at once, their weights stacked on a leading axis; the forward recurrence one
baddbmm and one activation a step; BPTT written out by hand (pascanu_jax/backprop.py's
math, no autograd): one elementwise op and one bmm a step, then the weight gradients as
GEMMs over all steps; Omega's value from the same backward pass and its immediate
gradient folded into dE/dW_rec's GEMM; per-run global-norm clipping and SGD as two ops on
one flat parameter buffer; preallocated buffers, `torch.inference_mode`, float32. Only
the steps are a Python loop. `loss_omega_grads` exposes one gradient for tests.

    python torch_peer.py METHOD LENGTH RUNS UPDATES [--batched | --rnn] [--threads N]
                         [--device auto|cpu|cuda]

Device: --device, default cuda where PyTorch sees one, else cpu.

prints {"run_updates_per_s", "torch", "torch_device", "torch_threads"} as JSON.
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
    """h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), logits = W h_T + b.

    Inputs (T, B, n_in), or (B, T, n_in) with `batch_first`."""

    def __init__(self, hidden: int, batch_first: bool = False):
        super().__init__()
        self.rnn = torch.nn.RNN(N_SYMBOLS, hidden, nonlinearity="tanh", batch_first=batch_first)
        self.out = torch.nn.Linear(hidden, N_CLASSES)
        for p in self.parameters():  # basic_tanh: normal(0, 0.1) weights, zero biases
            torch.nn.init.normal_(p, std=0.1) if p.dim() > 1 else torch.nn.init.zeros_(p)

    def forward(self, x):
        _, h_last = self.rnn(x)  # (1, B, H): the final state, whatever the layout
        return self.out(h_last[0])


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


# The batched peer: every run in one set of batched ops, BPTT written out by hand.

BOUND = 1e-20  # pairs with |d_k|^2 below this are left out of Omega


def temporal_order_runs(gen: torch.Generator, runs: int, batch: int, length: int, device: str):
    """One temporal order batch per run: symbols (R, T, B) in 0..5 and labels (R, B)."""
    symbols = torch.randint(2, 6, (runs, length, batch), generator=gen, device=device)
    w = length // 10
    values = torch.randint(0, 2, (2, runs, 1, batch), generator=gen, device=device)
    offsets = torch.randint(0, w, (2, runs, 1, batch), generator=gen, device=device)
    symbols.scatter_(1, w + offsets[0], values[0])
    symbols.scatter_(1, length // 2 + offsets[1], values[1])
    return symbols, (values[0] + 2 * values[1]).squeeze(1)


class BatchedPeer:
    """R independent runs (MSGD-C / MSGD-CR) with their weights stacked on a leading axis.

    Row convention as in pascanu_jax: h_t = tanh(h_{t-1} W_rec + u_t W_in + b),
    logits = h_T W_out + b_out. All parameters are views of one flat (R, P) buffer
    `theta` (W = [W_rec; W_in; b] as (R, K, H), K = H + n_in + 1, then W_out, b_out), their
    gradients of one (R, P) buffer `grad`, so per-run clipping and SGD are a norm and one
    addcmul_. The inputs are one-hot, so all steps' u_t W_in + b is one row lookup
    (index_select, as an embedding does) and dE/db the row sums of dE/dW_in.

    Buffers, allocated once, laid out so that every step reads and writes blocks whose rows
    are contiguous (PyTorch's CPU elementwise ops were ~4x slower on an output with 50-wide
    rows than on a contiguous one):
      S (R, T + 1, B, H): S[:, t + 1] = h_t (S[:, 0] = h_{-1} = 0), run-major for the GEMMs.
      U (R, T, B, H): the input projections.  A (R, T, B, H): a_t = dE/dz_t.
      D (T + 1, R, B, H), time-major so that each step's bmm writes a contiguous block:
        D[t + 1] = d_t = dE/dh_t and D[t] = a_t W_rec^T (the error carried one step back).

    `sigmoid_tanh` (the default on a CPU) computes tanh(z) as 2 sigmoid(2 z) - 1 (the 2
    folded into the step's baddbmm): PyTorch's CPU tanh took 2.7 ns an element here (one
    thread) against 0.4 ns for sigmoid, so the step's one tanh became two cheaper ops.
    """

    def __init__(
        self,
        runs: int,
        length: int,
        hidden: int = 50,
        batch: int = 20,
        device: str = "cpu",
        sigmoid_tanh: bool | None = None,
    ):
        R, T, B, H, n = runs, length, batch, hidden, N_SYMBOLS
        self.R, self.T, self.B, self.H = R, T, B, H
        self.sigmoid_tanh = device == "cpu" if sigmoid_tanh is None else sigmoid_tanh
        kw = {"device": device, "dtype": torch.float32}
        sizes = ((H + n + 1) * H, H * N_CLASSES, N_CLASSES)
        self.theta = torch.zeros(R, sum(sizes), **kw)
        self.grad = torch.zeros(R, sum(sizes), **kw)

        def views(flat):
            W, W_out, b_out = flat.split(sizes, dim=1)
            return W.view(R, H + n + 1, H), W_out.view(R, H, N_CLASSES), b_out

        self.W, self.W_out, self.b_out = views(self.theta)
        self.gW, self.gW_out, self.gb_out = views(self.grad)
        self.S = torch.zeros(R, T + 1, B, H, **kw)
        self.U = torch.empty(R, T, B, H, **kw)
        self.A = torch.empty(R, T, B, H, **kw)
        self.D = torch.empty(T + 1, R, B, H, **kw)
        self.act_grad = torch.empty(R, T, B, H, **kw)  # tanh'(z_t) = 1 - h_t^2
        self.mixed = torch.empty(R, T, B, H, **kw)  # s_{t-1} + Omega's weighted back_t
        self.one_hot = torch.zeros(R, T * B, n, **kw)
        self.step_out = torch.empty(R, B, H, **kw)
        self.run_offset = n * torch.arange(R, device=device).view(R, 1, 1)
        self.index = torch.zeros(R * T * B, dtype=torch.int64, device=device)  # run, symbol
        self.labels = torch.zeros(R, B, dtype=torch.int64, device=device)
        self.minus_one = torch.full((R, B, 1), -1.0, **kw)
        self.scalar_minus_one = torch.full((), -1.0, **kw)

    def init_basic_tanh(self, gen: torch.Generator) -> None:
        """basic_tanh: weights normal(0, 0.1), biases 0, drawn per run from `gen`."""
        self.theta.zero_()
        for w in (self.W[:, : self.H + N_SYMBOLS], self.W_out):
            w.normal_(0.0, 0.1, generator=gen)

    def _set_symbols(self, symbols: torch.Tensor, labels: torch.Tensor) -> None:
        torch.add(symbols, self.run_offset, out=self.index.view(symbols.shape))
        self.one_hot.zero_().scatter_(-1, symbols.view(self.R, -1, 1), 1.0)
        self.labels = labels.to(torch.int64)

    def draw_batch(self, gen: torch.Generator) -> None:
        """A fresh temporal order batch for every run."""
        device = str(self.theta.device)
        self._set_symbols(*temporal_order_runs(gen, self.R, self.B, self.T, device))

    def set_batch(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        """Given one-hot inputs (R, T, B, n_in) and labels (R, B)."""
        if not bool((inputs.sum(-1) == 1).all() and ((inputs == 0) | (inputs == 1)).all()):
            raise ValueError("the batched peer takes one-hot inputs")
        self._set_symbols(inputs.argmax(-1), labels)

    def gradients(self, alpha: float | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fill `grad` with dE/dtheta (+ alpha d+Omega/dW_rec); returns (loss, Omega), (R,).

        alpha None (MSGD-C) skips Omega altogether.
        """
        R, T, B, H = self.R, self.T, self.B, self.H
        n = N_SYMBOLS
        S, A, D = self.S, self.A, self.D
        W_rec, W_in, b = self.W[:, :H], self.W[:, H : H + n], self.W[:, H + n]
        sig = self.sigmoid_tanh
        c = 2.0 if sig else 1.0  # the step computes c z_t

        # Forward: U_t = c (u_t W_in + b) for all steps, then one baddbmm and the
        # activation a step.
        table = (W_in + b.unsqueeze(1)).mul_(c)
        torch.index_select(table.reshape(R * n, H), 0, self.index, out=self.U.view(-1, H))
        step_out = self.step_out
        for t in range(T):
            torch.baddbmm(self.U[:, t], S[:, t], W_rec, alpha=c, out=step_out)
            if sig:  # tanh(z) = 2 sigmoid(2 z) - 1
                torch.add(self.scalar_minus_one, step_out.sigmoid_(), alpha=2.0, out=S[:, t + 1])
            else:
                torch.tanh(step_out, out=S[:, t + 1])

        # Loss at the last step: softmax cross-entropy, mean over the batch.
        h_last = S[:, T]
        logits = torch.baddbmm(self.b_out.unsqueeze(1), h_last, self.W_out)
        logp = torch.log_softmax(logits, dim=-1)
        labels = self.labels.unsqueeze(-1)
        loss = logp.gather(-1, labels).squeeze(-1).mean(1).neg_()
        g = logp.exp_().scatter_add_(-1, labels, self.minus_one).mul_(1.0 / B)  # dE/dlogits
        self.gW_out.copy_(torch.bmm(h_last.transpose(1, 2), g))
        self.gb_out.copy_(g.sum(1))
        torch.bmm(g, self.W_out.transpose(1, 2), out=D[T])  # d_{T-1}

        # Backward through time: a_t = d_t * tanh'(z_t), d_{t-1} = a_t W_rec^T.
        h = S[:, 1:]
        torch.addcmul(torch.ones((), device=h.device), h, h, value=-1.0, out=self.act_grad)
        W_rec_T = W_rec.transpose(1, 2)
        regularize = alpha is not None
        for t in range(T - 1, -1, -1):
            torch.mul(D[t + 1], self.act_grad[:, t], out=A[:, t])
            if t or regularize:  # D[0] only serves Omega
                torch.bmm(A[:, t], W_rec_T, out=D[t])

        # Omega (regularizer.py), vectorised over steps. Its immediate gradient
        # W_rec (4 alpha / n) sum_k c'_k a_k^T a_k = sum_k (v_k back_k)^T a_k, with
        # v_k = 4 alpha c'_k / n and back_k = a_k W_rec^T = D[k], joins dE/dW_rec's GEMM:
        # sum_k m_k^T a_k with m_k = h_{k-1} + v_k back_k.
        omega, prev = None, S[:, :T]
        if regularize:
            sq = torch.linalg.vector_norm(D, dim=-1).square_()  # (T + 1, R, B)
            d_sq, back_sq = sq[1:], sq[:T]
            kept = d_sq >= BOUND
            safe = torch.where(kept, d_sq, 1.0)
            excess = back_sq / safe - 1.0
            zero = torch.zeros((), device=sq.device)
            w = torch.where(kept, excess / safe, zero)
            n_kept = torch.count_nonzero(kept, dim=(0, 2)).clamp_(min=1).to(sq.dtype)
            omega = torch.where(kept, excess * excess, zero).sum((0, 2)) / n_kept
            v = w.permute(1, 0, 2).mul(4.0 * alpha / n_kept.view(R, 1, 1))
            prev = torch.addcmul(prev, D[:T].transpose(0, 1), v.unsqueeze(-1), out=self.mixed)
        # Weight gradients: one GEMM over all steps for W_rec, one for W_in (one-hot).
        A2 = A.view(R, T * B, H)
        g_rec = torch.bmm(prev.reshape(R, T * B, H).transpose(1, 2), A2)
        g_in = torch.bmm(self.one_hot.transpose(1, 2), A2)
        g_b = g_in.sum(1)  # one-hot inputs: every (t, b) counts once
        self.gW[:, :H].copy_(g_rec)
        self.gW[:, H : H + n].copy_(g_in)
        self.gW[:, H + n].copy_(g_b)
        return loss, omega

    def update(self, alpha: float | None, threshold: float = 1.0, lr: float = 0.01):
        """One MSGD-C / MSGD-CR update of every run: gradient, per-run clipping, SGD."""
        loss, _ = self.gradients(alpha)
        norm = torch.linalg.vector_norm(self.grad, dim=1)
        coef = norm.clamp_(min=threshold).reciprocal_().mul_(-lr * threshold)
        self.theta.addcmul_(self.grad, coef.unsqueeze(1))
        return loss

    def params(self) -> dict[str, torch.Tensor]:
        """The stacked parameters in pascanu_jax's names and layout (views)."""
        return _named(self.W, self.W_out, self.b_out, self.H)

    def grads(self) -> dict[str, torch.Tensor]:
        return _named(self.gW, self.gW_out, self.gb_out, self.H)


def _named(W, W_out, b_out, H) -> dict[str, torch.Tensor]:
    n = N_SYMBOLS
    return {
        "W_rec": W[:, :H],
        "W_in": W[:, H : H + n],
        "b": W[:, H + n],
        "W_out": W_out,
        "b_out": b_out,
    }


# The nn.RNN peer (MSGD-C only): PyTorch's own recurrent layer, autograd, R runs at once.


class RNNPeer:
    """R independent MSGD-C runs, each its own `torch.nn.RNN` (cuDNN's kernels on a GPU,
    PyTorch's fused RNN on a CPU), trained together as a PyTorch user tuning for speed
    would: one batch for all runs drawn in one go (`batch_first` layout), the runs' losses
    summed so that a single `backward()` fills every gradient, per-run global-norm
    clipping (`clip_grad_norm_`, foreach kernels) and one `SGD(foreach=True)` step over all
    parameters, gradients set to None rather than zeroed.

    Why one nn.RNN per run: nn.RNN (and cuDNN's RNN) has one weight set per layer, with no
    batched or grouped-weight form, so runs with different weights cannot share its call.
    Concatenating the runs into one nn.RNN of R H units with a block-diagonal W_hh would
    make it one call, but multiplies the recurrent FLOPs by R (15 here), needs the
    off-diagonal blocks and their gradients masked after every step, and per-run clipping
    by hand on blocks of the weights: no longer nn.RNN as written, and BatchedPeer already
    is the batched form without the waste. nn.RNN has no hook for Omega, so this peer is
    MSGD-C only.
    """

    def __init__(self, runs: int, hidden: int = 50, batch: int = 20, device: str = "cpu"):
        self.R, self.H, self.B, self.device = runs, hidden, batch, device
        self.nets = []
        for seed in range(runs):
            torch.manual_seed(seed)
            net = Net(hidden, batch_first=True).to(device)
            # The paper's model has one bias: b_hh stays 0 and untrained (training both
            # would step b twice and count its gradient twice in the clipping norm).
            net.rnn.bias_hh_l0.requires_grad_(False)
            self.nets.append(net)
        self.opt = torch.optim.SGD(
            [p for net in self.nets for p in net.parameters() if p.requires_grad],
            lr=0.01,
            foreach=True,
        )
        self.x = self.y = None

    def draw_batch(self, gen: torch.Generator, length: int) -> None:
        """A fresh temporal order batch for every run: x (R, B, T, 6), y (R, B)."""
        symbols, labels = temporal_order_runs(gen, self.R, self.B, length, self.device)
        self.x = torch.nn.functional.one_hot(symbols.transpose(1, 2), N_SYMBOLS).float()
        self.y = labels

    def set_batch(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        """Given inputs (R, T, B, n_in), time-major as pascanu_jax's, and labels (R, B)."""
        self.x = inputs.to(self.device, torch.float32).transpose(1, 2).contiguous()
        self.y = labels.to(self.device, torch.int64)

    def gradients(self) -> torch.Tensor:
        """Fill every parameter's .grad with dE/dtheta of its run; returns the losses (R,)."""
        self.opt.zero_grad(set_to_none=True)
        losses = torch.stack(
            [
                torch.nn.functional.cross_entropy(net(self.x[r]), self.y[r])
                for r, net in enumerate(self.nets)
            ]
        )
        losses.sum().backward()  # the runs share no parameter: each gets its own gradient
        return losses.detach()

    def update(self, threshold: float = 1.0, lr: float = 0.01) -> torch.Tensor:
        """One MSGD-C update of every run: gradient, per-run clipping, SGD."""
        losses = self.gradients()
        for net in self.nets:
            torch.nn.utils.clip_grad_norm_(
                [p for p in net.parameters() if p.requires_grad], threshold, foreach=True
            )
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()
        return losses

    def set_params(self, params: dict) -> None:
        """Load pascanu_jax-named parameters, each stacked (R, ...) (b goes to b_ih)."""
        with torch.no_grad():
            for r, net in enumerate(self.nets):
                get = lambda k, r=r: torch.as_tensor(params[k][r], dtype=torch.float32)  # noqa: E731
                net.rnn.weight_hh_l0.copy_(get("W_rec").T)
                net.rnn.weight_ih_l0.copy_(get("W_in").T)
                net.rnn.bias_ih_l0.copy_(get("b"))
                net.rnn.bias_hh_l0.zero_()
                net.out.weight.copy_(get("W_out").T)
                net.out.bias.copy_(get("b_out"))

    def params(self) -> dict[str, torch.Tensor]:
        """pascanu_jax's names and layout, stacked over runs, on the CPU (copies);
        b = b_ih + b_hh, the one bias nn.RNN's two stand for."""
        return self._named(lambda p: p.detach(), lambda rnn: rnn.bias_ih_l0 + rnn.bias_hh_l0)

    def grads(self) -> dict[str, torch.Tensor]:
        """dE/dtheta in pascanu_jax's names (dE/db: the gradient of b_ih)."""
        return self._named(lambda p: p.grad, lambda rnn: rnn.bias_ih_l0.grad)

    def _named(self, get, bias) -> dict[str, torch.Tensor]:
        def stack(f):
            return torch.stack([f(net).detach() for net in self.nets]).cpu()

        return {
            "W_rec": stack(lambda n: get(n.rnn.weight_hh_l0).T),
            "W_in": stack(lambda n: get(n.rnn.weight_ih_l0).T),
            "b": stack(lambda n: bias(n.rnn)),
            "W_out": stack(lambda n: get(n.out.weight).T),
            "b_out": stack(lambda n: get(n.out.bias)),
        }


@torch.inference_mode()
def loss_omega_grads(params, inputs, labels, alpha=None, sigmoid_tanh=None):
    """(loss (R,), Omega (R,) or None, grads) of the batched peer, for testing.

    params: pascanu_jax names, each stacked (R, ...); inputs (R, T, B, n_in); labels (R, B).
    Arrays of any kind (numpy, ...); results are float32 tensors on the CPU.
    """
    inputs = torch.as_tensor(inputs, dtype=torch.float32)
    R, T, B, _ = inputs.shape
    H = params["W_rec"].shape[-1]
    peer = BatchedPeer(R, T, H, B, sigmoid_tanh=sigmoid_tanh)
    for k, v in peer.params().items():
        v.copy_(torch.as_tensor(params[k], dtype=torch.float32))
    peer.set_batch(inputs, torch.as_tensor(labels))
    loss, omega = peer.gradients(alpha)
    return loss, omega, {k: v.clone() for k, v in peer.grads().items()}


def run_updates_per_second_batched(
    method: str,
    length: int,
    runs: int,
    updates: int,
    hidden: int = 50,
    batch: int = 20,
    device: str = "cpu",
) -> float:
    """Train `runs` runs together (BatchedPeer) for `updates` updates; run-updates/s."""
    alpha = None if method == "MSGD-C" else 4.0
    with torch.inference_mode():
        gen = torch.Generator(device=device).manual_seed(0)
        peer = BatchedPeer(runs, length, hidden, batch, device)
        peer.init_basic_tanh(gen)
        peer.draw_batch(gen)
        peer.update(alpha)  # warm-up
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(updates):
            peer.draw_batch(gen)
            peer.update(alpha)
        if device != "cpu":
            torch.cuda.synchronize()
        return runs * updates / (time.perf_counter() - start)


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


def run_updates_per_second_rnn(
    method: str,
    length: int,
    runs: int,
    updates: int,
    hidden: int = 50,
    batch: int = 20,
    device: str = "cpu",
) -> float:
    """Train `runs` nn.RNN runs together (RNNPeer, MSGD-C) for `updates` updates."""
    if method != "MSGD-C":
        raise ValueError(f"the nn.RNN peer has no Omega: MSGD-C only, got {method}")
    gen = torch.Generator(device=device).manual_seed(0)
    peer = RNNPeer(runs, hidden, batch, device)
    peer.draw_batch(gen, length)
    peer.update()  # warm-up
    if device != "cpu":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(updates):
        peer.draw_batch(gen, length)
        peer.update()
    if device != "cpu":
        torch.cuda.synchronize()
    return runs * updates / (time.perf_counter() - start)


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' where PyTorch sees a GPU, else 'cpu'; 'cuda' without one raises."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: this PyTorch sees no CUDA device")
    return device


def main(argv: list[str] | None = None) -> None:
    """`python torch_peer.py METHOD LENGTH RUNS UPDATES [--batched | --rnn]`: prints JSON."""
    p = argparse.ArgumentParser(description="run-updates/s of the PyTorch peer")
    p.add_argument("method", choices=["MSGD-C", "MSGD-CR"])
    p.add_argument("length", type=int)
    p.add_argument("runs", type=int)
    p.add_argument("updates", type=int)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument(
        "--batched", action="store_true", help="all runs at once (BatchedPeer), not one by one"
    )
    kind.add_argument("--rnn", action="store_true", help="nn.RNN per run, trained together")
    p.add_argument("--threads", type=int, help="intra-op threads (default: PyTorch's)")
    p.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto", help="default: cuda if any"
    )
    args = p.parse_args(argv)
    if args.rnn and args.method != "MSGD-C":
        p.error(f"--rnn: nn.RNN has no Omega, so MSGD-C only, got {args.method}")
    for name in ("length", "runs", "updates"):
        if getattr(args, name) < 1:
            p.error(f"{name} must be >= 1, got {getattr(args, name)}")
    if args.threads is not None:
        if args.threads < 1:
            p.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        p.error(str(e))
    if args.batched:
        measure = run_updates_per_second_batched
    elif args.rnn:
        measure = run_updates_per_second_rnn
    else:
        measure = run_updates_per_second
    rate = measure(args.method, args.length, args.runs, args.updates, device=device)
    result = {
        "run_updates_per_s": rate,
        "torch": torch.__version__,
        "torch_device": device,
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
