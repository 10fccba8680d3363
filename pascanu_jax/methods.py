"""Training methods as data: the paper's three (§4), and any optax optimizer with a
clipping rule and a regularisation weight.

    MSGD     minibatch SGD                       threshold = inf, alpha = 0, no guard
    MSGD-C   + norm clipping (Algorithm 1)       threshold = 1,   alpha = 0, guard
    MSGD-CR  + clipping and the regulariser      threshold = 1,   alpha = 4, guard

The guard is the authors' rule for a gradient whose norm is NaN, Inf or > 1e10: W_rec's
update becomes 0.02 W_rec and the others 0 (`clip_by_pascanu_norm(nonfinite="shrink")`).
In their code it sits inside the clipping branch, so plain MSGD has none: it applies such a
gradient as it is, and a blow-up ends the run as a failure (docs/protocol.md).

All three are the same update, `optax.chain(clip_by_pascanu_norm(threshold),
optax.sgd(lr))` applied to `loss_and_grads(..., alpha=alpha)` -- `step.sgd_step`, which
every training loop of the package uses -- so a program can `vmap` over methods by
batching (threshold, alpha). The clipping statistics in an optimizer state are read with
`clip_state(opt_state)` (or `optax.tree.get(opt_state, "norm")` and the like), by type and
name: where the clip state sits in the chain is not part of the API.

Beyond the paper, a method is an optimizer of `OPTIMIZERS` with its numeric
hyperparameters, a clipping rule and alpha, written as a spec (`parse_method`):

    adam:lr=1e-3                    Adam, no clipping
    adam:lr=1e-3+clip=1+alpha=4     Adam after Algorithm 1 at 1, with Omega (alpha 4)
    sgd:clip=2xmean+measure=1000    §3.2's heuristic: clip at twice the mean norm of the
                                    first 1000 updates
    sgd:clipvalue=0.1               element-wise clipping to [-0.1, 0.1] (Mikolov)
    adam:lr=1e-3+agc=0.01           adaptive clipping (optax.adaptive_grad_clip)
    MSGD-CR:alpha=2                 a paper method with a setting changed

`method_transform` builds the update of a method, `clip stage -> optimizer`, from its
`UpdateRule` (what fixes the compiled program: optimizer, clipping kind, boolean options)
and its numbers (learning rate and other hyperparameters, threshold, guard), which may be
traced: runs that share a rule train in one `vmap`ped program.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp
import optax

from pascanu_jax.clipping import (
    PascanuClipState,
    clip_by_mean_norm,
    clip_by_pascanu_norm,
)

# The paper's constant learning rate (no momentum) and minibatch size.
LEARNING_RATE = 0.01
BATCH_SIZE = 20
# Updates over which §3.2's heuristic measures the mean norm when a spec does not say.
MEASURE = 1000

CLIPS = ("norm", "mean_norm", "value", "adaptive")
"""Clipping rules: "norm" (Algorithm 1 at `threshold`; inf: none), "mean_norm" (Algorithm 1
at `threshold` times the mean norm of the first `measure` updates, §3.2), "value"
(element-wise to [-threshold, threshold], `optax.clip`) and "adaptive" (unit-wise
adaptive clipping with ratio `threshold`, `optax.adaptive_grad_clip`)."""


def _momentum(learning_rate, momentum=0.9, nesterov=False):
    return optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov)


OPTIMIZERS: Mapping[str, Callable[..., optax.GradientTransformation]] = MappingProxyType(
    {
        "sgd": optax.sgd,
        "momentum": _momentum,
        **{
            name: getattr(optax, name)
            for name in (
                "adam",
                "adamw",
                "adamax",
                "nadam",
                "radam",
                "amsgrad",
                "adabelief",
                "rmsprop",
                "adagrad",
                "lion",
                "yogi",
                "novograd",
                "lamb",
                "fromage",
                "sign_sgd",
            )
        },
    }
)
"""The optimizers a method may name: optax's, by their optax names, and "momentum" (SGD
with momentum, 0.9 unless given)."""

_ALIASES = {"lr": "learning_rate"}
# Hyperparameters whose default None means "absent": giving one changes the program.
_OPTIONAL = ("momentum",)


def _hyperparameters(optimizer: str) -> dict[str, Any]:
    """name -> default of the optimizer's numeric and boolean hyperparameters."""
    out = {}
    for name, p in inspect.signature(OPTIMIZERS[optimizer]).parameters.items():
        if name == "learning_rate" or isinstance(p.default, (bool, int, float)):
            out[name] = p.default
        elif p.default is None and name in _OPTIONAL:
            out[name] = None
    return out


@dataclasses.dataclass(frozen=True)
class UpdateRule:
    """What fixes the compiled program of a method: the optimizer, the clipping rule, the
    optimizer's boolean options and which of its optional hyperparameters (absent by
    default, like SGD's momentum) are given. Runs whose methods share a rule train in one
    `vmap`ped program; the numbers (`Method.numbers`) are data.

    Examples:
      >>> pj.get_method("MSGD-CR").rule == pj.get_method("MSGD").rule  # one program
      True
      >>> pj.parse_method("adam:lr=1e-3+clip=1+nesterov=on").rule
      UpdateRule(optimizer='adam', clip='norm', flags=(('nesterov', True),), optional=())
    """

    optimizer: str = "sgd"
    clip: str = "norm"
    flags: tuple[tuple[str, bool], ...] = ()
    optional: tuple[str, ...] = ()

    def hyperparameters(self) -> tuple[str, ...]:
        """The numeric hyperparameters of the program (its data), in signature order.

        Examples:
          >>> pj.UpdateRule("sgd").hyperparameters()
          ('learning_rate',)
          >>> pj.UpdateRule("sgd", optional=("momentum",)).hyperparameters()
          ('learning_rate', 'momentum')
        """
        return tuple(
            name
            for name, default in _hyperparameters(self.optimizer).items()
            if ((name in self.optional) if default is None else not isinstance(default, bool))
        )


@dataclasses.dataclass(frozen=True)
class Method:
    """A training method: an optimizer with its hyperparameters, a clipping rule and the
    regularisation weight alpha.

    Attributes:
      name: how results name it (the spec it was written as, or MSGD, MSGD-C, MSGD-CR).
      threshold: the clipping rule's number: the norm threshold (inf = no clipping), the
        multiple of the mean norm, the element-wise bound or the adaptive ratio.
      alpha: weight of Omega (0: no regulariser).
      guard: the non-finite guard of norm clipping (default: on where norm clipping is).
      optimizer: a name of `OPTIMIZERS`.
      hyperparams: (name, value) pairs passed to the optimizer; a learning rate not given
        is the engine's (the paper's 0.01).
      clip: one of `CLIPS`.
      measure: updates whose mean norm sets the threshold ("mean_norm" only).
    """

    name: str
    threshold: float
    alpha: float
    guard: bool | None = None  # None: on where there is norm clipping (resolved at creation)
    optimizer: str = "sgd"
    hyperparams: tuple[tuple[str, float | bool], ...] = ()
    clip: str = "norm"
    measure: int = 0

    def __post_init__(self):
        if self.guard is None:
            norm = self.clip in ("norm", "mean_norm") and math.isfinite(self.threshold)
            object.__setattr__(self, "guard", bool(norm))

    @property
    def rule(self) -> UpdateRule:
        """The static part (see `UpdateRule`)."""
        defaults = _hyperparameters(self.optimizer)
        return UpdateRule(
            self.optimizer,
            self.clip,
            tuple((n, v) for n, v in self.hyperparams if isinstance(v, bool)),
            tuple(n for n, v in self.hyperparams if defaults.get(n, 0) is None),
        )

    def numbers(self, learning_rate: float = LEARNING_RATE) -> dict[str, float]:
        """The rule's numeric hyperparameters: the method's, else the optimizer's
        defaults, else `learning_rate` for the learning rate.

        Examples:
          >>> pj.parse_method("adam:lr=1e-3").numbers()
          {'learning_rate': 0.001, 'b1': 0.9, 'b2': 0.999, 'eps': 1e-08, 'eps_root': 0.0}
        """
        given = dict(self.hyperparams)
        defaults = {**_hyperparameters(self.optimizer), "learning_rate": learning_rate}
        return {n: float(given.get(n, defaults[n])) for n in self.rule.hyperparameters()}


PAPER_RULE = UpdateRule()
"""The rule of the paper's three methods: SGD after norm clipping, one program."""

METHODS = MappingProxyType(
    {
        "MSGD": Method("MSGD", math.inf, 0.0),
        "MSGD-C": Method("MSGD-C", 1.0, 0.0),
        "MSGD-CR": Method("MSGD-CR", 1.0, 4.0),
    }
)
"""The paper's three methods by name (§4): MSGD = (threshold inf, alpha 0, no guard),
MSGD-C = (1, 0, guard), MSGD-CR = (1, 4, guard)."""

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^inf$")
_SPEC_HELP = (
    "a method is MSGD, MSGD-C, MSGD-CR or OPTIMIZER[:KEY=VALUE+...] with KEY one of the "
    "optimizer's hyperparameters (lr = learning_rate), clip (a norm threshold, NxMEAN for "
    "N times the measured mean norm, or none), clipvalue, agc, measure, alpha, guard (on/off)"
)


def _number(spec: str, key: str, text: str, *, positive: bool = False) -> float:
    if not _NUMBER.match(text):
        raise ValueError(f"method {spec!r}: {key}={text!r} is not a number")
    value = float(text)
    if positive and not value > 0:
        raise ValueError(f"method {spec!r}: {key} must be > 0, got {text}")
    if value < 0:
        raise ValueError(f"method {spec!r}: {key} must be >= 0, got {text}")
    return value


def parse_method(spec: str) -> Method:
    """A method from its spec (module docstring); ValueError, one line naming the part of
    the spec that is wrong and what is valid.

    Grammar: `BASE[:KEY=VALUE+KEY=VALUE...]`, BASE an optimizer of `OPTIMIZERS` or a
    paper method (MSGD, MSGD-C, MSGD-CR: SGD at the engine's learning rate). Keys:

      lr, learning_rate, ...  the optimizer's hyperparameters (numbers; booleans on/off)
      clip=T                  Algorithm 1 at threshold T (clip=none: no clipping)
      clip=Mxmean             Algorithm 1 at M times the mean norm of the first
                              `measure` updates (§3.2; measure=1000 unless given)
      clipvalue=C             element-wise clipping to [-C, C] (optax.clip)
      agc=R                   adaptive clipping with ratio R (optax.adaptive_grad_clip)
      alpha=A                 weight of the regulariser Omega
      guard=on|off            the non-finite guard of norm clipping (default on with it)

    Examples:
      >>> pj.parse_method("MSGD-CR") is pj.METHODS["MSGD-CR"]
      True
      >>> m = pj.parse_method("adam:lr=1e-3+clip=1+alpha=4")
      >>> m.optimizer, m.hyperparams, m.clip, m.threshold, m.alpha, m.guard
      ('adam', (('learning_rate', 0.001),), 'norm', 1.0, 4.0, True)
      >>> pj.parse_method("sgd:clip=2xmean+measure=500").clip
      'mean_norm'
      >>> pj.parse_method("adam:lrate=1e-3")
      Traceback (most recent call last):
      ...
      ValueError: method 'adam:lrate=1e-3': unknown key 'lrate' for adam; valid: ...
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"method {spec!r} is empty; {_SPEC_HELP}")
    spec = spec.strip()
    if spec in METHODS:
        return METHODS[spec]
    base, _, rest = spec.partition(":")
    if base in METHODS:
        optimizer, threshold, alpha = "sgd", METHODS[base].threshold, METHODS[base].alpha
    elif base.lower() in OPTIMIZERS:  # "Adam" is adam
        optimizer, threshold, alpha = base.lower(), math.inf, 0.0
    else:
        raise ValueError(
            f"method {spec!r}: unknown optimizer or method {base!r}; valid: "
            f"{', '.join([*METHODS, *OPTIMIZERS])}"
        )
    hyper = _hyperparameters(optimizer)
    valid = ["lr", *hyper, "clip", "clipvalue", "agc", "measure", "alpha", "guard"]
    given: dict[str, float | bool] = {}
    clip, measure, guard = "norm", None, None
    clips = []
    for part in rest.split("+") if rest else []:
        key, eq, text = part.partition("=")
        key, text = key.strip(), text.strip()
        if not eq or not key or not text:
            raise ValueError(f"method {spec!r}: {part!r} is not KEY=VALUE; {_SPEC_HELP}")
        key = _ALIASES.get(key, key)
        if key in given or (key in ("clip", "clipvalue", "agc") and key in clips):
            raise ValueError(f"method {spec!r}: {key} is given twice")
        if key == "clip":
            clips.append(key)
            if text == "none":
                clip, threshold = "norm", math.inf
            elif text.endswith("xmean"):
                clip, threshold = "mean_norm", _number(spec, key, text[:-5], positive=True)
            else:
                clip, threshold = "norm", _number(spec, key, text, positive=True)
        elif key in ("clipvalue", "agc"):
            clips.append(key)
            clip = "value" if key == "clipvalue" else "adaptive"
            threshold = _number(spec, key, text, positive=True)
        elif key == "measure":
            if not text.isdigit() or int(text) < 1:
                raise ValueError(f"method {spec!r}: measure must be a whole number >= 1")
            measure = int(text)
        elif key == "alpha":
            alpha = _number(spec, key, text)
        elif key == "guard" or isinstance(hyper.get(key), bool):
            if text not in ("on", "off", "true", "false"):
                raise ValueError(f"method {spec!r}: {key} must be on or off, got {text!r}")
            value = text in ("on", "true")
            if key == "guard":
                guard = value
            else:
                given[key] = value
        elif key in hyper:
            given[key] = _number(spec, key, text, positive=key == "learning_rate")
        else:
            raise ValueError(
                f"method {spec!r}: unknown key {key!r} for {optimizer}; valid: {', '.join(valid)}"
            )
    if len(clips) > 1:
        raise ValueError(f"method {spec!r}: give one clipping rule, got {' and '.join(clips)}")
    if measure is not None and clip != "mean_norm":
        raise ValueError(f"method {spec!r}: measure needs clip=Mxmean")
    if guard and clip not in ("norm", "mean_norm"):
        raise ValueError(f"method {spec!r}: the guard belongs to norm clipping (clip=...)")
    # guard None: on where there is norm clipping, as the paper's three methods have it
    return Method(
        spec,
        threshold,
        alpha,
        guard,
        optimizer,
        tuple(sorted(given.items())),
        clip,
        (measure or MEASURE) if clip == "mean_norm" else 0,
    )


def get_method(method: str | Method) -> Method:
    """A method by name or spec (`parse_method`); ValueError names what is wrong.

    Examples:
      >>> pj.get_method("MSGD-C")
      Method(name='MSGD-C', threshold=1.0, alpha=0.0, guard=True, optimizer='sgd',
             hyperparams=(), clip='norm', measure=0)
    """
    if isinstance(method, Method):
        return method
    return parse_method(method)


def method_transform(
    rule: UpdateRule,
    hyperparams: Mapping[str, float | jax.Array],
    *,
    threshold: float | jax.Array,
    guard: bool | jax.Array,
    measure: int | jax.Array = MEASURE,
    nonfinite: str = "skip",
) -> optax.GradientTransformation:
    """The update of a method: a clipping stage, then the optimizer.

        norm       chain(clip_by_pascanu_norm(threshold, guard), optimizer)
        mean_norm  chain(clip_by_mean_norm(threshold, measure, guard), optimizer)
        value      chain(clip_by_pascanu_norm(inf, guard off), optax.clip(threshold), optimizer)
        adaptive   chain(clip_by_pascanu_norm(inf, guard off),
                         optax.adaptive_grad_clip(threshold), optimizer)

    For "value" and "adaptive" the first stage only records the pre-clip norms (no
    clipping, no guard), so every method's state has one `PascanuClipState` to read
    (`clip_state`). The numbers (`hyperparams` from `Method.numbers`, `threshold`,
    `guard`, `measure`) may be traced: one program for all methods of one rule. The paper's
    methods are `sgd_with_clipping`, bitwise.

    Examples:
      >>> m = pj.parse_method("adam:lr=1e-3+clip=1")
      >>> tx = pj.method_transform(m.rule, m.numbers(), threshold=m.threshold, guard=m.guard)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> updates, state = tx.update({"w": jnp.array([3.0, 4.0])}, state)
      >>> jnp.round(updates["w"], 6)  # Adam's first step: -lr times the sign (of the clipped g)
      Array([-0.001, -0.001], dtype=float32)
      >>> float(pj.clip_state(state).norm)
      5.0
    """
    if rule.clip not in CLIPS:
        raise ValueError(f"unknown clipping rule {rule.clip!r}; valid: {', '.join(CLIPS)}")
    if rule.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {rule.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    if rule.clip == "norm":
        stages = [clip_by_pascanu_norm(threshold, nonfinite=nonfinite, guard=guard)]
    elif rule.clip == "mean_norm":
        stages = [clip_by_mean_norm(threshold, measure, nonfinite=nonfinite, guard=guard)]
    else:
        clipper = optax.clip if rule.clip == "value" else optax.adaptive_grad_clip
        stages = [clip_by_pascanu_norm(jnp.inf, guard=False), clipper(threshold)]
    optimizer = OPTIMIZERS[rule.optimizer](**hyperparams, **dict(rule.flags))
    return optax.chain(*stages, optimizer)


def sgd_with_clipping(
    threshold: float | jax.Array, learning_rate: float = LEARNING_RATE, **clip_options
) -> optax.GradientTransformation:
    """optax.chain(clip_by_pascanu_norm(threshold), optax.sgd(learning_rate)).

    `threshold` (and `guard` among `clip_options`) may be traced: one program for all
    methods. `step.sgd_step` makes an update with it; `clip_state(state)` reads the
    clipping statistics of its state.

    Examples:
      >>> tx = pj.sgd_with_clipping(1.0)  # MSGD-C at the paper's rate 0.01
      >>> updates, _ = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init({"w": jnp.zeros(2)}))
      >>> updates["w"]  # -0.01 times the gradient rescaled to norm 1
      Array([-0.006, -0.008], dtype=float32)
    """
    return optax.chain(clip_by_pascanu_norm(threshold, **clip_options), optax.sgd(learning_rate))


def clip_state(opt_state) -> PascanuClipState:
    """The `PascanuClipState` inside an optimizer state, found by type: read the clipping
    statistics through this (`clip_state(s).norm`, `.clipped`, `.nonfinite`, `.mean_norm`),
    never by position (`s[0]`), which depends on how the chain is built. Works on states
    with leading axes (vmapped runs): the fields then carry them too.

    Examples:
      >>> tx = pj.sgd_with_clipping(1.0)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> _, state = tx.update({"w": jnp.array([3.0, 4.0])}, state)
      >>> clip = pj.clip_state(state)
      >>> float(clip.norm), int(clip.clipped), int(clip.nonfinite)
      (5.0, 1, 0)
    """
    found = [
        s
        for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, PascanuClipState))
        if isinstance(s, PascanuClipState)
    ]
    if len(found) != 1:
        raise ValueError(
            f"expected one PascanuClipState in the optimizer state, found {len(found)}"
        )
    return found[0]
