"""The docs cannot drift: their worked examples run here, and the code they quote
must equal the source (docs/sync.py)."""
import doctest
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "docs"))
sys.path.insert(1, ROOT)

import sync  # noqa: E402  (docs/sync.py)

PAGES = [p for p in sync.pages() if os.path.basename(p) != "README.md"]
FENCE = re.compile(r"```pycon\n(.*?)```", re.DOTALL)


def worked_examples(text):
    """The ```pycon blocks of a page as one doctest text (one namespace per page); all
    other lines are blanked, so a failure reports its line number in the page."""
    kept = [""] * text.count("\n")
    lines = text.split("\n")
    for match in FENCE.finditer(text):
        first = text.count("\n", 0, match.start(1))
        for k in range(first, first + match.group(1).count("\n")):
            kept[k] = lines[k]
    return "\n".join(kept)


def run_page(path):
    """Run a page's examples; return (failed, attempted, report)."""
    import io
    import minicnn
    with open(path, encoding="utf-8") as f:
        source = worked_examples(f.read())
    test = doctest.DocTestParser().get_doctest(source, {}, os.path.basename(path), path, 0)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    previous = minicnn.backend.get_device()
    minicnn.set_device("cpu")  # the pages' examples are NumPy arrays
    try:
        runner.run(test, out=report.write)
    finally:
        minicnn.set_device(previous)
    return runner.failures, runner.tries, report.getvalue()


def test_there_is_a_page_per_building_block():
    names = {os.path.basename(p) for p in PAGES}
    for block in ("autograd", "convolution", "max-pooling", "dropout", "batch-norm", "dense",
                  "softmax-cross-entropy", "optimizers", "gradient-checking"):
        assert any(block in n for n in names), f"no docs page for {block}"


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_worked_examples_give_the_numbers_the_page_shows(page):
    failed, attempted, report = run_page(page)
    assert attempted >= 5, f"{page} has only {attempted} checked example lines"
    assert failed == 0, report


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_quoted_code_is_the_source(page):
    with open(page, encoding="utf-8") as f:
        text = f.read()
    assert sync.MARKER.search(text), f"{page} quotes no code from minicnn"
    assert sync.drifted(text) == [], "run python docs/sync.py"


def test_drift_is_caught(tmp_path):
    """Edit the quoted source and the check must notice (so the test above can fail)."""
    page = "<!-- code: mod.py double -->\nstale\n<!-- /code -->\n"
    (tmp_path / "mod.py").write_text("def double(x):\n    return 2 * x\n")
    assert sync.drifted(page, root=tmp_path) == ["mod.py double"]
    page = sync.synced(page, root=tmp_path)
    assert "return 2 * x" in page and sync.drifted(page, root=tmp_path) == []
    (tmp_path / "mod.py").write_text("def double(x):\n    return x + x\n")
    assert sync.drifted(page, root=tmp_path) == ["mod.py double"]


def test_a_quote_of_a_missing_function_is_an_error(tmp_path):
    (tmp_path / "mod.py").write_text("class A:\n    def f(self):\n        pass\n")
    assert "def f(self)" in sync.definition_source("mod.py", "A.f", root=tmp_path)
    with pytest.raises(LookupError, match="A.g"):
        sync.definition_source("mod.py", "A.g", root=tmp_path)


def test_readme_indexes_every_page():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    for page in PAGES:
        assert f"docs/{os.path.basename(page)}" in readme, f"README.md does not link {page}"


def test_figures_are_drawn_from_the_code(tmp_path):
    import make_figures
    make_figures.main([str(tmp_path)])
    assert (tmp_path / "im2col.png").stat().st_size > 10_000


if __name__ == "__main__":  # python tests/test_docs.py [PAGE...]: show each page's doctest report
    for page in sys.argv[1:] or PAGES:
        failed, attempted, report = run_page(page)
        print(f"== {page}: {attempted} tried, {failed} failed\n{report}")
