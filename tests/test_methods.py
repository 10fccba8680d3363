"""Methods beyond the paper: specs, any optax optimizer, §3.2's mean-norm threshold,
element-wise and adaptive clipping, against plain optax loops with the engine's keys."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pascanu_jax as pj
from pascanu_jax.experiments import engine
from pascanu_jax.experiments.runner import checkpoint_paths, program_rule, train

TASK = pj.get_task("temporal_order")
# eval_every=1: the diagnostics hold every update's loss; nothing stops at a screen.
CFG = engine.EngineConfig(
    TASK,
    (10, 11),
    n_hidden=16,
    max_updates=12,
    eval_every=1,
    periods_per_call=12,
    screen_size=10,
    confirm_size=100,
    stop_on_success=False,
)


def optax_loop(cfg, spec, tx, n_updates):
    """A run as a user writes it with optax: the engine's initial draw and batches."""
    scheme, method = pj.get_scheme(spec.init), pj.get_method(spec.method)
    keys = engine.run_keys(spec.seed, cfg.lengths[0])
    params = pj.init_rnn(keys["init"], scheme, TASK.n_in, cfg.n_hidden, TASK.n_out)
    gradients = pj.rnn_gradients(TASK, activation=scheme.activation, alpha=method.alpha)
    opt_state, losses, norms = tx.init(params), [], []
    for n in range(n_updates):
        batch = engine.training_batch(cfg, keys["data"], jnp.int32(n), cfg.lengths[0])
        loss, _, grads = gradients(params, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        losses.append(float(loss))
        norms.append(float(optax.tree.norm(grads)))
    return params, losses, norms


def assert_run_equals(result, k, spec, params, losses):
    np.testing.assert_allclose(
        [d["loss"] for d in result.diagnostics if (d["method"], d["seed"]) == (
            pj.get_method(spec.method).name, spec.seed)],
        losses,
        rtol=2e-5,
    )  # fmt: skip
    for name in params:
        np.testing.assert_allclose(
            result.params[k][name], params[name], rtol=2e-5, atol=1e-7, err_msg=f"{spec} {name}"
        )


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        ("MSGD-CR", dict(optimizer="sgd", clip="norm", threshold=1.0, alpha=4.0, guard=True)),
        ("MSGD-CR:alpha=2", dict(threshold=1.0, alpha=2.0, guard=True)),
        ("sgd", dict(threshold=math.inf, alpha=0.0, guard=False, hyperparams=())),
        ("Adam:lr=1e-3", dict(optimizer="adam", hyperparams=(("learning_rate", 1e-3),))),
        ("adam:lr=1e-3+clip=1+alpha=4", dict(clip="norm", threshold=1.0, alpha=4.0, guard=True)),
        ("sgd:clip=2xmean", dict(clip="mean_norm", threshold=2.0, measure=1000, guard=True)),
        ("sgd:clip=0.5xmean+measure=20", dict(clip="mean_norm", threshold=0.5, measure=20)),
        ("sgd:clipvalue=0.1", dict(clip="value", threshold=0.1, guard=False)),
        ("rmsprop:lr=1e-3+agc=0.01", dict(optimizer="rmsprop", clip="adaptive", threshold=0.01)),
        ("sgd:momentum=0.9+nesterov=on", dict(hyperparams=(("momentum", 0.9), ("nesterov", True)))),
        ("MSGD-C:guard=off", dict(threshold=1.0, guard=False)),
        ("adam:clip=none", dict(threshold=math.inf, guard=False)),
    ],
)
def test_a_spec_is_parsed_into_its_method(spec, fields):
    m = pj.parse_method(spec)
    assert m.name == spec and pj.get_method(spec) == m
    for name, value in fields.items():
        assert getattr(m, name) == value, name


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("adamm:lr=1", "unknown optimizer or method 'adamm'; valid: MSGD, MSGD-C, MSGD-CR, sgd,"),
        ("adam:lrate=1", "unknown key 'lrate' for adam; valid: lr, learning_rate, b1,"),
        ("sgd:b1=0.9", "unknown key 'b1' for sgd"),
        ("adam:lr=-0.001", "learning_rate must be > 0, got -0.001"),
        ("adam:lr=0", "learning_rate must be > 0"),
        ("adam:b1=-1", "b1 must be >= 0"),
        ("adam:lr=fast", "learning_rate='fast' is not a number"),
        ("sgd:clip=-1", "clip must be > 0"),
        ("sgd:clip=twoxmean", "clip='two' is not a number"),
        ("sgd:clip=1+agc=0.1", "give one clipping rule, got clip and agc"),
        ("sgd:measure=100", "measure needs clip=Mxmean"),
        ("sgd:clip=1xmean+measure=0", "measure must be a whole number >= 1"),
        ("sgd:clipvalue=1+guard=on", "the guard belongs to norm clipping"),
        ("sgd:lr", "'lr' is not KEY=VALUE"),
        ("sgd:lr=1+learning_rate=2", "learning_rate is given twice"),
        ("adam:nesterov=maybe", "nesterov must be on or off"),
        ("", "is empty"),
    ],
)
def test_a_bad_spec_is_one_line_naming_the_part(spec, message):
    with pytest.raises(ValueError) as e:
        pj.parse_method(spec)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_paper_methods_are_one_program_and_other_rules_are_programs_of_their_own():
    paper = [pj.RunSpec("basic_tanh", m, 0) for m in (*pj.METHODS, "MSGD-CR:alpha=2", "sgd")]
    assert program_rule(paper) == pj.UpdateRule()
    mixed = [*paper, pj.RunSpec("basic_tanh", "adam:lr=1e-3", 0)]
    with pytest.raises(ValueError, match="one program trains runs of one update rule"):
        program_rule(mixed)
    assert checkpoint_paths("o/c.npz", mixed) == ["o/c.npz", "o/c.1.npz"]


def test_adam_in_the_engine_equals_a_plain_optax_loop_update_for_update():
    # Three runs of one program: two learning rates (data, not constants), and one with
    # Algorithm 1 at a threshold low enough to fire and Omega.
    runs = [pj.RunSpec("smart_tanh", f"adam:lr={lr}", 2) for lr in ("1e-3", "3e-3")]
    runs.append(pj.RunSpec("basic_tanh", "adam:lr=1e-2+clip=0.05+alpha=4", 1))
    result = train(CFG, runs, measure_eval=False)
    clipped = optax.chain(pj.clip_by_pascanu_norm(0.05, nonfinite="shrink"), optax.adam(1e-2))
    for k, tx in enumerate((optax.adam(1e-3), optax.adam(3e-3), clipped)):
        params, losses, norms = optax_loop(CFG, runs[k], tx, CFG.max_updates)
        assert_run_equals(result, k, runs[k], params, losses)
    assert max(norms) > 0.05  # the clipping fired


@pytest.mark.parametrize(
    ("spec", "clipper"),
    [("sgd:clipvalue=0.01", optax.clip(0.01)), ("sgd:agc=0.001", optax.adaptive_grad_clip(0.001))],
)
def test_element_wise_and_adaptive_clipping_equal_their_optax_transforms(spec, clipper):
    run = pj.RunSpec("basic_tanh", spec, 0)
    result = train(CFG, [run], measure_eval=False)
    params, losses, _ = optax_loop(CFG, run, optax.chain(clipper, optax.sgd(0.01)), 12)
    assert_run_equals(result, 0, run, params, losses)
    plain, _, _ = optax_loop(CFG, run, optax.sgd(0.01), 12)
    assert not np.allclose(params["W_rec"], plain["W_rec"])  # the clipping changed the run


def test_the_mean_norm_threshold_equals_its_definition():
    # §3.2: threshold = multiple x the mean pre-clip norm of the first `measure` updates,
    # which are not clipped; Algorithm 1 at that threshold from then on.
    multiple, measure = 0.5, 5
    run = pj.RunSpec("basic_tanh", f"sgd:clip={multiple}xmean+measure={measure}", 0)
    result = train(CFG, [run], measure_eval=False)
    _, _, norms = optax_loop(CFG, run, optax.sgd(0.01), measure)
    expected = multiple * np.mean(norms)
    row = result.runs[0]
    np.testing.assert_allclose(row["measured_norm"], np.mean(norms), rtol=1e-5)
    np.testing.assert_allclose(row["clip_threshold"], expected, rtol=1e-5)

    by_hand = _switch(optax.sgd(0.01), pj.sgd_with_clipping(np.float32(expected)), measure)
    params, losses, norms = optax_loop(CFG, run, by_hand, CFG.max_updates)
    assert max(norms[measure:]) > expected  # it clips after the measurement
    assert_run_equals(result, 0, run, params, losses)


def _switch(first, then, after):
    """`first` for the first `after` updates, then `then` (each with its own state)."""

    def init(params):
        return (jnp.zeros((), jnp.int32), first.init(params), then.init(params))

    def update(updates, state, params=None):
        n, a, b = state
        ua, a2 = first.update(updates, a, params)
        ub, b2 = then.update(updates, b, params)
        out = jax.tree.map(lambda x, y: jnp.where(n < after, x, y), ua, ub)
        return out, (n + 1, a2, b2)

    return optax.GradientTransformation(init, update)


def test_mixed_methods_train_as_they_would_alone_and_resume_exactly(tmp_path):
    paper = [pj.RunSpec("basic_tanh", m, 0) for m in ("MSGD", "MSGD-CR")]
    adam = [pj.RunSpec("basic_tanh", "adam:lr=1e-3+clip=1", 0)]
    runs = [paper[0], adam[0], paper[1]]
    mixed = train(CFG, runs, measure_eval=False)
    assert [r["method"] for r in mixed.runs] == ["MSGD", "adam:lr=1e-3+clip=1", "MSGD-CR"]
    alone = train(CFG, paper, measure_eval=False)
    for got, want in ((mixed.params[0], alone.params[0]), (mixed.params[2], alone.params[1])):
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
    # Paused after its first compiled call, then resumed: the same runs, bit for bit.
    ckpt = str(tmp_path / "ckpt.npz")
    cfg = dataclasses.replace(CFG, periods_per_call=4)
    first = train(cfg, runs, checkpoint=ckpt, measure_eval=False, time_limit=0)
    assert not first.complete
    resumed = train(cfg, runs, checkpoint=ckpt, measure_eval=False)
    assert resumed.complete and len(resumed.segments) >= 2
    # Restored finished, both programs train nothing, and the wall time is still theirs.
    again = train(cfg, runs, checkpoint=ckpt, measure_eval=False)
    assert again.wall_s == pytest.approx(resumed.wall_s, rel=0.05, abs=0.2)
    assert again.wall_s >= first.wall_s
    for got, want in zip(resumed.params, mixed.params, strict=True):
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])


@pytest.mark.parametrize("name", sorted(pj.OPTIMIZERS))
def test_every_optimizer_takes_its_hyperparameters_as_traced_data(name):
    # One vmapped update with two sets of numbers equals each set on its own.
    method = pj.parse_method(name)
    rule, base = method.rule, method.numbers(learning_rate=0.01)
    sets = [base, {k: v * (0.5 if k == "learning_rate" else 1.0) for k, v in base.items()}]
    params = {"W": jnp.arange(6.0).reshape(2, 3) / 7 - 0.3, "b": jnp.ones(3)}
    grads = jax.tree.map(lambda p: jnp.cos(3 * p), params)

    def step(numbers):
        tx = pj.method_transform(rule, numbers, threshold=jnp.inf, guard=False)
        state = tx.init(params)
        for _ in range(2):
            updates, state = tx.update(grads, state, params)
        return updates

    stacked = {k: jnp.array([s[k] for s in sets]) for k in base}
    batched = jax.jit(jax.vmap(step))(stacked)
    for i, numbers in enumerate(sets):
        alone = step(numbers)
        for leaf, got in zip(jax.tree.leaves(alone), jax.tree.leaves(batched), strict=True):
            np.testing.assert_allclose(got[i], leaf, rtol=1e-5, atol=1e-7, err_msg=name)


def test_a_run_whose_recurrent_weights_diverged_gets_a_nan_radius_not_a_crash():
    # A diverged run (rmsprop at lr=1e-2 at length 200) once stopped a whole sweep: eig
    # refuses a non-finite matrix. Its row stays, with rho = nan; the other rows are exact.
    from pascanu_jax.experiments.runner import _rows

    W = np.stack([np.diag([0.5, -2.0]), np.full((2, 2), np.nan)])[None]  # (period, R, n, n)
    ones = np.ones((1, 2))
    diag = engine.Diagnostics(
        trained=np.ones((1, 2), bool),
        updates=1000 * ones,
        loss=ones,
        omega=ones,
        norm_sum=ones,
        counted=ones,
        clipped=ones,
        nonfinite=0 * ones,
        steps=ones,
        error=ones,
        W_rec=W,
    )
    rows = _rows(diag, 1)
    rho = rows[:, 2 + engine.DIAGNOSTICS.index("spectral_radius")]
    assert rows.shape[0] == 2
    np.testing.assert_allclose(rho[0], 2.0)
    assert np.isnan(rho[1])
