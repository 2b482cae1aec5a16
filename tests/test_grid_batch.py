"""Batch solving: many grids in one process, a CSV of answers, the solve rate with its interval, bad rows named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from hardsight.intervals import wilson
from hardsight.errors import ConfigError, DataError
from hardsight.grid.batch import SolveRate, read_challenges, solve_all
from tests.test_grid import LAYOUT_3x3, ColourClassifier, grid_of

# three grids and what shows a bus in each (row-major, from 0); the third CSV row's answer is wrong on purpose
OTHER = ["Other", "Car", "Bus", "Other", "Other", "Other", "Bus", "Car", "Other"]
GRIDS = {"g1.png": (LAYOUT_3x3, "0 4 8"), "g2.png": (OTHER, "2 6"), "g3.png": (LAYOUT_3x3, "0 4")}


@pytest.fixture
def challenges(tmp_path) -> Path:
    folder = tmp_path / "grids"
    folder.mkdir()
    for name, (layout, _) in GRIDS.items():
        grid_of(layout, 3, 3, line_px=2).save(folder / name)
    rows = ["file,target,cells"] + [f"{n},buses,{cells}" for n, (_, cells) in GRIDS.items()]
    (folder / "answers.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture
def fake_run(monkeypatch):
    """`hardsight solve` on a classifier that loads once; the count says how often a model was loaded."""
    import hardsight.engine.predictor

    loads = []
    monkeypatch.setattr(hardsight.engine.predictor, "Predictor", lambda run, **kw: loads.append(run) or ColourClassifier())
    return loads


def test_csv_challenges_give_the_solve_rate_with_its_interval(challenges):
    rate = SolveRate()
    done = list(solve_all(ColourClassifier(), read_challenges([challenges / "answers.csv"])))
    for d in done:
        rate.add(d)
    assert [d.solution.selected for d in done] == [[0, 4, 8], [2, 6], [0, 4, 8]]
    assert [d.correct for d in done] == [True, True, False]
    assert (rate.grids, rate.answered, rate.solved) == (3, 3, 2)
    summary = rate.to_json()
    assert summary["solve_rate"] == pytest.approx(2 / 3)
    assert summary["solve_rate_interval"] == pytest.approx(list(wilson(2, 3)))
    assert summary["per_target"]["Bus"]["solved"] == 2 and summary["per_target"]["Bus"]["grids"] == 3


def test_cli_solves_a_csv_in_one_process_with_json_lines_and_annotations(challenges, fake_run, tmp_path):
    from typer.testing import CliRunner

    from hardsight.cli import app

    out = tmp_path / "annotated"
    result = CliRunner().invoke(app, ["solve", str(tmp_path), str(challenges / "answers.csv"), "--json",
                                      "--annotate", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(fake_run) == 1  # the model loaded once for every grid
    grids, summary = lines[:-1], lines[-1]["summary"]
    assert [Path(g["file"]).name for g in grids] == list(GRIDS) and [g["solved"] for g in grids] == [True, True, False]
    assert grids[1]["selected"] == [2, 6] and grids[1]["cells"] == [2, 6]
    assert summary["solved"] == 2 and summary["answered"] == 3 and summary["solve_rate_interval"][0] < 2 / 3
    assert sorted(p.name for p in out.iterdir()) == ["grids-g1.png", "grids-g2.png", "grids-g3.png"]
    assert Image.open(out / "grids-g2.png").size == Image.open(challenges / "g2.png").size

    table = CliRunner().invoke(app, ["solve", str(tmp_path), str(challenges / "answers.csv")])
    assert table.exit_code == 0 and "solve rate: 2/3 = 66.7%" in table.output and "per target" in table.output


def test_a_folder_of_grids_needs_a_target_and_has_no_rate_without_answers(challenges, fake_run, tmp_path):
    from typer.testing import CliRunner

    from hardsight.cli import app

    (challenges / "answers.csv").unlink()
    result = CliRunner().invoke(app, ["solve", str(tmp_path), str(challenges), "--target", "cars", "--json"])
    assert result.exit_code == 0, result.output
    *grids, last = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(grids) == 3 and all("solved" not in g for g in grids)
    assert last["summary"]["grids"] == 3 and last["summary"]["solve_rate"] is None
    missing = CliRunner().invoke(app, ["solve", str(tmp_path), str(challenges)])
    assert missing.exit_code == 2 and "--target is needed" in missing.output and not fake_run[1:]


def test_one_grid_keeps_one_json_object(challenges, fake_run, tmp_path):
    from typer.testing import CliRunner

    from hardsight.cli import app

    result = CliRunner().invoke(app, ["solve", str(tmp_path), str(challenges / "g2.png"), "--target", "bus", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["selected"] == [2, 6]


@pytest.mark.parametrize("csv_text, message", [
    ("file,cells\ng1.png,0\n", "missing column(s) target"),
    ("file,target,cells\ng1.png,buses,0 4 8\ng2.png,mountains,1\n", "answers.csv row 3: unknown target 'mountains'"),
    ("file,target,cells\ng1.png,buses,0 4 9\n", "answers.csv row 2: cell 9 is outside the 3x3 grid"),
    ("file,target,cells\ng1.png,buses,0 x\n", "answers.csv row 2: cells '0 x' are not whole numbers"),
    ("file,target,cells\ng1.png,buses,0\nnope.png,buses,1\n", "answers.csv row 3: nope.png not found"),
    ("file,target\ng1.png,\n", "answers.csv row 2: the target column is empty"),
])
def test_bad_rows_are_one_line_naming_the_row_before_any_model_run(challenges, fake_run, tmp_path, csv_text,
                                                                   message):
    from typer.testing import CliRunner

    from hardsight.cli import app

    (challenges / "answers.csv").write_text(csv_text)
    solved = []
    classifier = ColourClassifier()
    classifier.predict_images = lambda images, names=None: solved.append(names)  # never reached
    with pytest.raises((ConfigError, DataError), match=None) as caught:
        list(solve_all(classifier, read_challenges([challenges / "answers.csv"])))
    assert message in " ".join(str(caught.value).split()) and not solved
    result = CliRunner().invoke(app, ["solve", str(tmp_path), str(challenges / "answers.csv")])
    assert result.exit_code == 2 and message in " ".join(result.output.split()) and "Traceback" not in result.output
