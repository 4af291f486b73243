"""The most confused class pairs by name: what a 101-class confusion matrix cannot show in tick labels."""

from __future__ import annotations

from senet.train.evaluate import top_confusions


def test_top_confusions_order_names_and_shares() -> None:
    conf = [
        [8, 2, 0],  # cat: 2 as dog
        [5, 0, 5],  # dog: 5 as cat, 5 as frog (ties keep class order)
        [0, 1, 9],  # frog: 1 as dog
    ]
    pairs = top_confusions(conf, ["cat", "dog", "frog"], k=3)
    assert pairs == [
        {"true": "dog", "predicted": "cat", "count": 5, "share": 50.0},
        {"true": "dog", "predicted": "frog", "count": 5, "share": 50.0},
        {"true": "cat", "predicted": "dog", "count": 2, "share": 20.0},
    ]
    assert len(top_confusions(conf, ["cat", "dog", "frog"], k=10)) == 4  # only the non-zero cells
    assert top_confusions([[3, 0], [0, 4]], ["a", "b"]) == []
