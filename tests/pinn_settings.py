"""The PeriodicPINN settings the small PINN tests build on.

A ``PeriodicPINN`` takes every setting it is not given from its problem's recommendation (for
the bundled problems: time marching and a Gauss-Newton stage; minutes of training). The tests
train tiny networks for a few steps, so they start from this plain set instead: one window,
Adam only, the settings they name on top.
"""

PLAIN = dict(n_windows=1, n_modes=1, hidden=(64, 64, 64, 64), activation="tanh",
             architecture="mlp", n_collocation=2048, n_initial=256, n_boundary=256,
             ic_weight=10.0, bc_weight=1.0, adam_steps=2000, learning_rate=1e-3, lr_decay=0.9,
             lr_decay_steps=500, lbfgs_steps=0, lm_steps=0, resample_every=100,
             lm_resample_every=0)


def plain(**kw):
    """:data:`PLAIN` with ``kw`` on top."""
    return {**PLAIN, **kw}
