import dataclasses
import json
from typing import ClassVar

import numpy as np
import pytest

from mlpentest.results import ImageGrid, Result, figure_of, to_jsonable


@dataclasses.dataclass(frozen=True)
class _Toy(Result):
    auc: float
    scores: np.ndarray
    name: str = "toy"
    title: ClassVar[str] = "toy result"


def test_to_dict_is_strict_json():
    r = _Toy(auc=np.float32(0.75), scores=np.array([0.1, np.nan, np.inf]))
    d = r.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["type"] == "_Toy" and back["title"] == "toy result"
    assert back["auc"] == pytest.approx(0.75)
    assert back["scores"] == [pytest.approx(0.1), None, None]


def test_results_are_frozen():
    r = _Toy(auc=0.5, scores=np.zeros(2))
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'auc'"):
        r.auc = 1.0  # type: ignore[misc]


def test_summary_keeps_scalars_only():
    assert _Toy(auc=0.5, scores=np.zeros(2)).summary() == {"auc": 0.5, "name": "toy"}


def test_to_jsonable_handles_nested_numpy():
    value = {1: (np.int64(3), [np.bool_(True)]), "m": np.eye(2, dtype=np.float32)}
    assert to_jsonable(value) == {"1": [3, [True]], "m": [[1.0, 0.0], [0.0, 1.0]]}


def test_base_plot_says_there_is_no_figure():
    with pytest.raises(NotImplementedError, match="_Toy has no figure"):
        _Toy(auc=0.5, scores=np.zeros(1)).plot()


def test_image_grid_plots_and_flags():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = ImageGrid(
        heading="h",
        images=np.random.default_rng(0).random((5, 8, 8)),
        captions=tuple("abcde"),
        flagged=np.array([True, False, False, True, False]),
        n_cols=3,
    )
    fig = figure_of(grid.plot())
    assert len(fig.axes) == 6  # 2 rows x 3 columns, the last cell blank
    assert [ax.title.get_color() for ax in fig.axes[:2]] == ["tab:red", "black"]
    assert grid.summary() == {"n_images": 5, "n_flagged": 2}
    plt.close(fig)
