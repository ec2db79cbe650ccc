"""Every file the documentation cites exists in the repository: the relative links and images of
docs/*.md, README.md and benchmarks/RESULTS.md, and the repository paths they quote as code."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md", ROOT / "benchmarks/RESULTS.md"]
FOLDERS = ("benchmarks", "callbacks", "configs", "docs", "models", "symlight", "tasks", "tests")
SHIPPED = ("models", "sweeps")  # config names resolved under configs/, as the CLI does
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE = re.compile(r"`([^`\s]+)`")
PATH = re.compile(rf"(?:{'|'.join(FOLDERS + SHIPPED)})/[\w./-]*\.[A-Za-z]+")
PLACEHOLDER = re.compile(r"(^|/)[A-Z_]+(\.|/|$)")  # docs/heuristics/NAME.csv, models/NAME.yaml
BARE = re.compile(r"[\w-]+\.png")  # a plot named alone: `params_acc.png`


def prose(path: Path) -> str:
    """The file's text without fenced code blocks (commands and their output, not citations)."""
    return re.sub(r"```.*?```", "", path.read_text(), flags=re.S)


def links(path: Path) -> list[str]:
    """Relative link and image targets, without their #anchor."""
    found = [target.split("#")[0] for target in LINK.findall(prose(path))]
    return [t for t in found if t and not re.match(r"[a-z]+:", t)]


def quoted_paths(path: Path) -> list[str]:
    """Code spans that name a file of the repository (or a shipped config name)."""
    spans = CODE.findall(prose(path))
    return [s for s in spans if PATH.fullmatch(s) and not PLACEHOLDER.search(s)]


def bare_names(path: Path) -> list[str]:
    """Code spans that name a plot alone, to be found beside the page or in a folder below it."""
    return [s for s in CODE.findall(prose(path)) if BARE.fullmatch(s)]


def exists(quoted: str) -> bool:
    return (ROOT / quoted).exists() or (ROOT / "configs" / quoted).exists()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_image_exists(doc):
    missing = [t for t in links(doc) if not (doc.parent / t).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} links to missing files: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_quoted_repository_path_exists(doc):
    missing = [q for q in quoted_paths(doc) if not exists(q)]
    assert not missing, f"{doc.relative_to(ROOT)} cites missing files: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_plot_named_alone_exists_beside_the_page(doc):
    missing = [n for n in bare_names(doc) if not any(doc.parent.rglob(n))]
    assert not missing, f"{doc.relative_to(ROOT)} names missing files: {missing}"


def test_the_checks_see_a_missing_link_and_a_missing_path(tmp_path):
    doc = tmp_path / "page.md"
    doc.write_text(
        "![plot](heuristics/none.png) [ok](page.md#top) [web](https://example.org)\n"
        "`docs/heuristics/none.csv` `models/deepsets.yaml` `docs/heuristics/NAME.csv` `a.png`\n"
        "```\n`docs/in_a_block.md`\n```\n"
    )
    assert links(doc) == ["heuristics/none.png", "page.md"]
    assert quoted_paths(doc) == ["docs/heuristics/none.csv", "models/deepsets.yaml"]
    assert not exists("docs/heuristics/none.csv") and exists("models/deepsets.yaml")
    assert bare_names(doc) == ["a.png"]
