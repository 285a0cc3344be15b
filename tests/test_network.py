"""Layer layout in the flat state vector and H2O's initialisation schemes."""
import numpy as np
import pytest

from dask_dl.nn.network import build_layout, initial_state


def test_layout_offsets_and_views_share_memory():
    lay = build_layout(5, [4, 3], "Maxout", 2, True, 0.0, [0.0, 0.0])
    assert [lay.rows(l) for l in (1, 2, 3)] == [8, 6, 2]            # Maxout: two rows a hidden unit
    assert lay.n_weights == 8 * 5 + 6 * 4 + 2 * 3 and lay.n_biases == 8 + 6 + 2
    state = initial_state(lay, 1)
    assert state.dtype == np.float32 and state.size == 3 * lay.n_weights + 3 * lay.n_biases
    lay.weight_matrix(state, 2)[0, 0] = 42.0
    assert 42.0 in state[: lay.n_weights]                              # a view, not a copy
    assert not state[lay.n_weights + lay.n_biases:].any()              # optimizer state starts at 0


def test_uniform_adaptive_matches_h2o():
    lay = build_layout(400, [300, 200], "Rectifier", 10, True, 0.0, [0.0, 0.0])
    s = initial_state(lay, 3)
    for l, (fan_in, fan_out) in enumerate([(400, 300), (300, 200), (200, 10)], start=1):
        r = np.sqrt(6.0 / (fan_in + fan_out)) * (4.0 if l == 3 else 1.0)  # classifier output x4
        w = lay.weight_matrix(s, l)
        assert np.abs(w).max() <= r and np.abs(w).max() > 0.95 * r
        assert abs(w.mean()) < 0.05 * r
    assert (lay.bias_vector(s, 1) == 0.5).all() and (lay.bias_vector(s, 2) == 1.0).all()  # rectifier biases
    assert (lay.bias_vector(s, 3) == 0.0).all()
    reg = build_layout(400, [300], "Tanh", 1, False, 0.0, [0.0])
    s2 = initial_state(reg, 3)
    assert np.abs(reg.weight_matrix(s2, 2)).max() <= np.sqrt(6.0 / 301)   # no x4 for regression
    assert (reg.bias_vector(s2, 1) == 0.0).all()                         # tanh biases start at 0


@pytest.mark.parametrize("dist", ["Uniform", "Normal"])
def test_uniform_and_normal_scales(dist):
    lay = build_layout(500, [400], "Tanh", 3, True, 0.0, [0.0])
    w = lay.weight_matrix(initial_state(lay, 5, dist, 0.3), 1)
    if dist == "Uniform":
        assert np.abs(w).max() <= 0.3 and np.abs(w).max() > 0.29
        assert w.std() == pytest.approx(0.3 / np.sqrt(3), rel=0.02)
    else:
        assert w.std() == pytest.approx(0.3, rel=0.02)


def test_seed_determines_the_weights():
    lay = build_layout(20, [10], "Rectifier", 2, True, 0.0, [0.0])
    assert np.array_equal(initial_state(lay, 9), initial_state(lay, 9))
    assert not np.array_equal(initial_state(lay, 9), initial_state(lay, 10))
