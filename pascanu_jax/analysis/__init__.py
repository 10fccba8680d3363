"""The paper's analysis figures: the one-unit dynamics and its bifurcations (§2.3, Fig. 3),
the error surface and descent with and without clipping (Fig. 6), and the gradient flow
across time steps (Fig. 4 / §4)."""
