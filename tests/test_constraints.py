import numpy as np
import pytest

from mlpentest.constraints import norm, project, project_l1_ball
from mlpentest.errors import InvalidParameterError


def _bisection_l1(v, r):
    lo, hi = 0.0, float(np.abs(v).max())
    for _ in range(200):
        t = (lo + hi) / 2
        lo, hi = (t, hi) if np.maximum(np.abs(v) - t, 0).sum() > r else (lo, t)
    return np.sign(v) * np.maximum(np.abs(v) - hi, 0)


def test_l1_projection_matches_the_soft_threshold_solution():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(6, 30))
    np.testing.assert_allclose(project_l1_ball(d, 1.5), [_bisection_l1(v, 1.5) for v in d], atol=1e-9)
    small = d * 1e-3  # already inside: unchanged
    np.testing.assert_array_equal(project_l1_ball(small, 1.5), small)


@pytest.mark.parametrize("p", ["l2", "l1", "linf"])
def test_projection_is_feasible_for_ball_and_box(p):
    rng = np.random.default_rng(1)
    x0 = rng.random((8, 25))
    x = x0 + rng.normal(scale=2.0, size=x0.shape)
    eps = np.linspace(0.1, 2.0, 8)
    z = project(x, x0, eps=eps, p=p, bounds=(0.0, 1.0))
    assert (norm(z - x0, p) <= eps + 1e-9).all()
    assert z.min() >= 0.0 and z.max() <= 1.0
    inside = x0 + 1e-4
    np.testing.assert_allclose(project(inside, x0, eps=1.0, p=p, bounds=(0.0, 1.0)), inside)


def test_bad_norm_and_radius():
    x = np.zeros((1, 3))
    with pytest.raises(InvalidParameterError, match="norm"):
        project(x, x, eps=1.0, p="l3", bounds=(0.0, 1.0))
    with pytest.raises(InvalidParameterError, match="eps"):
        project(x, x, eps=-1.0, bounds=None)
