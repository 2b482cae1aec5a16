"""`hardsight report FOLDER`: one self-contained HTML file of a run, an evaluation, a tune or an assessment folder
(or an occlusion study), made from the files already there: report.md's text and tables, its plots and the rest of
plots/, and the strip of test images. Pictures are inlined as data URIs, so the file opens anywhere, offline, and
loads nothing from another host; a picture is taken from inside the folder only (runs/inline.py)."""

from __future__ import annotations

import html
from pathlib import Path

from hardsight.errors import RunError
from hardsight.runs.folder import RunFolder
from hardsight.runs.inline import data_uri, inside, local_name

SOURCES = ("report.md", "study.md")  # what a folder's report is written in: most folders, the occlusion study
GENERATOR = "hardsight report"  # marks a file this wrote, the only kind it overwrites

STYLE = """
body { margin: 2rem auto; max-width: 60rem; padding: 0 1rem; font: 15px/1.5 system-ui, sans-serif; color: #1d2330; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #d0d5dd; padding: .25rem .6rem; text-align: left; }
th { background: #f2f4f7; }
img { max-width: 100%; }
code { background: #f2f4f7; padding: 0 .2rem; border-radius: .2rem; }
.strip { display: flex; flex-wrap: wrap; gap: .5rem; }
.sample { margin: 0; border: 2px solid #067647; border-radius: .4rem; padding: .3rem; font-size: .8rem; }
.sample.wrong { border-color: #b42318; }
.sample img { display: block; max-height: 5rem; image-rendering: pixelated; }
.note { color: #667085; }
"""


def write_report_html(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write FOLDER/report.html (or `out`) and return its path; nothing in the folder is changed but that file.

    Raises RunError for a folder with no report.md, a picture outside the folder, or an `out` that is not a report
    this function wrote (an input is never overwritten)."""
    from hardsight.jobs.files import atomic_write

    folder = Path(folder)
    if not folder.is_dir():
        raise RunError(f"{folder}: no such folder")
    source = next((folder / name for name in SOURCES if (folder / name).is_file()), None)
    if source is None:
        raise RunError(f"{folder}: no report.md (expected a run, evaluation, tune or assessment folder holding "
                       "report.md, or an occlusion study's study.md)")
    target = Path(out) if out else folder / "report.html"
    refuse_overwrite(target)
    page = render(folder, source)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target


def refuse_overwrite(target: Path) -> None:
    """An existing file is replaced only when it is an earlier report of this command."""
    if target.is_dir():
        raise RunError(f"{target}: is a folder; give --out a file name such as report.html")
    if target.exists():
        try:
            ours = f'<meta name="generator" content="{GENERATOR}">' in target.read_text(encoding="utf-8")[:2000]
        except (OSError, UnicodeDecodeError):
            ours = False
        if not ours:
            raise RunError(f"{target}: exists and is not a report written by `hardsight report`; it is left as it "
                           "is: choose another --out")


def render(folder: Path, source: Path) -> str:
    """The page: report.md rendered (raw HTML in it escaped), then the plots it does not show, then the test images."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(source.read_text(encoding="utf-8"))
    shown: set[Path] = set()
    title = next((tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"), folder.name)
    for token in tokens:
        for child in token.children or ():
            if child.type == "image":
                name = local_name(str(child.attrGet("src") or ""))
                shown.add(inside(folder, name))
                if (uri := picture(folder, name)) is None:  # e.g. a run stopped before its plots: say so, go on
                    child.type, child.content, child.children = "text", f"[missing picture: {name}]", None
                else:
                    child.attrSet("src", uri)
    parts = [md.renderer.render(tokens, md.options, {})]
    more = [p for p in sorted((folder / "plots").glob("*.png")) if inside(folder, p.relative_to(folder)) not in shown]
    if more:
        parts.append("<h2>More plots</h2>")
        parts += [f'<figure><img src="{data_uri(folder, p.relative_to(folder))}" alt="{html.escape(p.stem)}">'
                  f"<figcaption>{html.escape(p.relative_to(folder).as_posix())}</figcaption></figure>" for p in more]
    parts.append(test_strip(folder))
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="generator" content="{GENERATOR}">\n<title>{html.escape(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n{''.join(parts)}\n"
            f'<p class="note">Written by <code>hardsight report</code> from {html.escape(source.name)} in '
            f"{html.escape(folder.resolve().name)}.</p>\n</body>\n</html>\n")


def test_strip(folder: Path) -> str:
    """The test images of a run's test_predictions.json with their predictions, errors first; '' without one."""
    run = RunFolder(folder)
    if not run.test_predictions.is_file():
        return ""
    try:
        rows = run.load_test_predictions()
    except (RunError, AttributeError) as e:  # half-written, or not this version's layout: the rest still renders
        return f'<h2>Test images</h2><p class="note">{html.escape(str(e) or "test_predictions.json: unreadable")}</p>'
    boxes = []
    for r in rows:
        said = r["prediction"] if r["correct"] else f"{r['prediction']} ({r['truth']})"
        uri = picture(folder, local_name(str(r["image"]))) if r["image"] else None
        image = f'<img src="{uri}" alt="{html.escape(str(r["file"]))}">' if uri else ""
        confidence = f"{100 * r['confidence']:.1f}%" if isinstance(r["confidence"], (int, float)) else ""
        boxes.append(f'<figure class="sample{"" if r["correct"] else " wrong"}">{image}'
                     f"<figcaption><b>{html.escape(str(said))}</b> {confidence}<br>"
                     f"{html.escape(Path(str(r['file'])).name)}</figcaption></figure>")
    return f'<h2>Test images, errors first</h2><div class="strip">{"".join(boxes)}</div>' if boxes else ""


def picture(folder: Path, name: str) -> str | None:
    """`name` as a data URI, None when no such file; refused (RunError) when it is outside the folder or no picture."""
    return data_uri(folder, name) if inside(folder, name).is_file() else None
