"""`hardsight assess`: nested subsets that never touch the held-out set, resume, the curve's arithmetic, the
report's fields."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from hardsight.assess.curve import labelled_subset, labels_to, nested_order, parse_sizes, resolve_sizes
from hardsight.intervals import wilson
from hardsight.cli import app
from hardsight.errors import ConfigError, DataError

runner = CliRunner()


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    low, high = wilson(0, 10)
    assert low == 0.0 and round(high, 4) == 0.2775  # honest at 0%: not the normal approximation's [0, 0]
    assert wilson(10, 10)[1] == 1.0


def test_labels_to_a_rate_is_interpolated_in_log_labels():
    curve = [(50, 0.2), (100, 0.6), (200, 0.95)]
    r = labels_to(curve, 0.9)
    assert r.between == (100, 200)
    assert r.labels == pytest.approx(100 * 2 ** ((0.9 - 0.6) / 0.35))  # about 181
    first = labels_to(curve, 0.1)
    assert first.labels == 50 and first.between is None and "at most 50" in first.note
    never = labels_to(curve, 0.99)
    assert never.labels is None and "best 95.0% with 200" in never.note
    assert labels_to([(50, 0.2), (100, 0.1), (400, 0.8)], 0.5).between == (100, 400)  # a dip: from the last below


def test_nested_subsets_nest_keep_groups_whole_and_validate_a_tenth():
    items = [(f"img{i}", f"person{i // 3}") for i in range(90)]  # 30 people, 3 pictures each
    order = nested_order(items, seed=4, group_of=lambda it: it[1])
    assert order == nested_order(items, seed=4, group_of=lambda it: it[1])  # seeded
    assert order != nested_order(items, seed=5, group_of=lambda it: it[1])
    smaller, larger = labelled_subset(order, 30), labelled_subset(order, 60)
    assert set(smaller[0]) <= set(larger[0]) and set(smaller[1]) <= set(larger[1])
    assert len(smaller[0]) + len(smaller[1]) == 30 and len(smaller[1]) == 3  # the tenth group validates
    people = lambda part: {p for _, p in part}  # noqa: E731
    assert not people(larger[0]) & people(larger[1])  # nobody both trains and validates
    assert len(labelled_subset(order, 31)[0]) + len(labelled_subset(order, 31)[1]) == 33  # a group is never cut


def test_sizes_parse_and_refuse_a_pool_under_the_smallest():
    assert parse_sizes("50, 100,all") == (50, 100, None)
    with pytest.raises(ConfigError, match="'ten'"):
        parse_sizes("ten")
    assert resolve_sizes((50, 500, None), 200) == ([50, 200], [500])
    with pytest.raises(DataError, match="200 labelled images .* smallest size 250"):
        resolve_sizes((250, None), 200)


def _assess(args: list[str]):
    result = runner.invoke(app, ["assess", *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def text_assessment(tmp_path_factory, captchas):
    """captchas (80) assessed at 16 and all labels, one epoch each."""
    root = tmp_path_factory.mktemp("assess")
    (root / "recipe.yaml").write_text("epochs: 1\nbatch_size: 8\n")
    out = root / "report"
    first = _assess(["text", str(captchas), "--out", str(out), "--sizes", "16,all", "--budget-minutes", "5",
                     "--holdout", "0.25", "--config", str(root / "recipe.yaml"), "--core-hour-price", "0.04",
                     "--label-price", "0.01"])
    return root, out, first.output


def test_assess_text_points_never_train_on_the_held_out_set(text_assessment, captchas):
    _, out, _ = text_assessment
    held = set(json.loads((out / "held_out.json").read_text()))
    assert len(held) == 20  # a quarter of 80
    parts = {}
    for n in (16, 60):
        split = json.loads((out / "points" / f"n{n:05d}" / "split.json").read_text())
        parts[n] = {p: set(split[p]) for p in ("train", "val", "test")}
        assert parts[n]["test"] == held
        assert not (parts[n]["train"] | parts[n]["val"]) & held
        assert len(parts[n]["train"] | parts[n]["val"]) == n
    assert parts[16]["train"] <= parts[60]["train"] and parts[16]["val"] <= parts[60]["val"]  # nested


def test_assess_text_report_fields(text_assessment):
    _, out, output = text_assessment
    report = json.loads((out / "assess.json").read_text())
    assert report["held_out"] == 20 and report["pool"] == 60
    assert [p["labels"] for p in report["points"]] == [16, 60]
    for p in report["points"]:
        s = p["scores"]
        assert s["attempts"] == 20 and s["rate"] == s["solved"] / 20
        assert s["rate_low"] <= s["rate"] <= s["rate_high"]
        assert set(s["metrics"]) == {"exact_match", "char_accuracy", "cer"} and s["ms_per_solve"] > 0
        assert p["minutes"] > 0 and p["share"] > 0
    assert set(report["headline"]["labels_to"]) == {"50%", "90%"}
    assert [c["labels"] for c in report["costs"]] == [16, 60]
    assert report["costs"][0]["one_off"] >= 16 * 0.01
    names = [b["name"] for b in report["baselines"]]
    assert any(n.startswith("ddddocr") for n in names)  # scored when installed, else a line saying so
    md = (out / "report.md").read_text()
    assert "## Headline" in md and "Wilson" in md and "Cost estimate (from your prices" in md
    assert (out / "curve_labels.png").stat().st_size > 0 and (out / "curve_minutes.png").stat().st_size > 0
    assert "few for a rate" in " ".join(output.split())  # 20 held-out images: the interval warning


def test_assess_rerun_trains_nothing_and_refuses_other_settings(text_assessment, captchas):
    root, out, _ = text_assessment
    before = (out / "points" / "n00016.json").read_text()
    from hardsight.assess.assessment import AssessConfig, assess

    cfg = AssessConfig("text", str(captchas), str(out), sizes=(16, None), holdout=0.25, budget_minutes=5,
                       settings={"epochs": 1, "batch_size": 8}, core_hour_price=0.04, label_price=0.01)
    again = assess(cfg, progress=False)
    assert again.trained == [] and (out / "points" / "n00016.json").read_text() == before
    other = runner.invoke(app, ["assess", "text", str(captchas), "--out", str(out), "--sizes", "16,all",
                                "--holdout", "0.3", "--config", str(root / "recipe.yaml")])
    assert other.exit_code == 2 and "holdout was 0.25, now 0.3" in " ".join(other.output.split())


def test_assess_resumes_a_point_that_did_not_finish(tmp_path, captchas):
    from hardsight.assess.assessment import AssessConfig, assess

    cfg = AssessConfig("text", str(captchas), str(tmp_path / "a"), sizes=(16, 32), holdout=0.25, budget_minutes=5,
                       settings={"epochs": 1, "batch_size": 8}, baselines=False)
    assert assess(cfg, progress=False).trained == [16, 32]
    (tmp_path / "a" / "points" / "n00032.json").unlink()  # as if interrupted after its last checkpoint
    again = assess(cfg, progress=False)
    assert again.trained == [32] and [p.labels for p in again.points] == [16, 32]


def test_assess_refuses_too_few_images_with_the_count(tmp_path, captchas):
    result = runner.invoke(app, ["assess", "text", str(captchas), "--out", str(tmp_path / "r"), "--sizes", "500"])
    said = " ".join(result.output.split())  # the console wraps lines
    assert result.exit_code == 2 and "64 labelled images" in said and "smallest size 500" in said


def test_assess_image_scores_synthetic_grids(tmp_path):
    colours = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200), "Other": (128, 128, 128)}
    for k, (name, colour) in enumerate(colours.items()):
        (tmp_path / "tiles" / name).mkdir(parents=True)
        for i in range(15):
            a = np.random.default_rng(100 * k + i).normal(0, 25, (24, 24, 3)) + np.array(colour)
            Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(tmp_path / "tiles" / name / f"{name}{i}.png")
    (tmp_path / "recipe.yaml").write_text("epochs: 2\nimage_size: 32\n")
    out = tmp_path / "r"
    _assess(["image", str(tmp_path / "tiles"), "--out", str(out), "--sizes", "20,all", "--model", "compact",
             "--grids", "30", "--config", str(tmp_path / "recipe.yaml"), "--budget-minutes", "5"])
    report = json.loads((out / "assess.json").read_text())
    assert report["held_out"] == 12 and [p["labels"] for p in report["points"]] == [20, 48]
    for p in report["points"]:
        assert p["scores"]["attempts"] == 30  # grids, not tiles
        assert {"top1", "macro_f1"} <= set(p["scores"]["metrics"])
    assert "synthetic 3x3 grids" in (out / "report.md").read_text()
    assert not math.isnan(report["points"][-1]["scores"]["ms_per_solve"])
