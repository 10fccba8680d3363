"""One real learning test: the paper's MSGD-CR on temporal order, as a user would write it."""

import jax
import optax

import pascanu_jax as pj

LENGTH = 20
BATCH = 20


def test_smart_tanh_msgd_cr_solves_temporal_order_20():
    task = pj.get_task("temporal_order")
    key = jax.random.key(0)
    params = pj.init_rnn(key, "smart_tanh", task.n_in, 50, task.n_out)
    tx = optax.chain(pj.clip_by_pascanu_norm(1.0), optax.sgd(0.01))

    @jax.jit
    def train(params, opt_state, key):
        def update(carry, k):
            params, opt_state = carry
            inputs, targets = task.sample(k, BATCH, LENGTH)
            loss, _omega, grads = pj.loss_and_grads(
                params, inputs, targets, task=task, activation="tanh", alpha=4.0
            )
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), _ = jax.lax.scan(
            update, (params, opt_state), jax.random.split(key, 500)
        )
        return params, opt_state

    @jax.jit
    def misclassified(params, key):
        inputs, targets = task.sample(key, 10_000, LENGTH)
        return task.errors(params, pj.rnn_states(params, inputs, "tanh"), targets).mean()

    opt_state = tx.init(params)
    errors = []
    for chunk in range(8):  # at most 4000 updates
        params, opt_state = train(params, opt_state, jax.random.fold_in(key, chunk))
        errors.append(float(misclassified(params, jax.random.fold_in(key, 10_000 + chunk))))
        if errors[-1] < 0.01:
            break
    assert errors[-1] < 0.01, f"misclassified fraction after each 500 updates: {errors}"
    assert errors[0] > 0.05  # it was learnt, not given: the first check was not yet solved
    assert int(pj.clip_state(opt_state).count) <= 4000
