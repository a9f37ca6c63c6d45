"""print(model) and `pkpd show` never cut a description or a source (issue 19): long texts wrap to the terminal
width; and every file a model cites ships with the repository."""

import re
from pathlib import Path

import pytest

import pkpd
from pkpd.cli import main
from pkpd.model import _parameter_table

ROOT = Path(__file__).resolve().parents[2]


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("width", [100, 160, 240])
def test_every_source_and_description_is_printed_in_full(width):
    model = pkpd.load_model("msc_salvadori")
    lines = _parameter_table(model.parameters, width)
    assert max(len(line) for line in lines) <= width
    text = _words("\n".join(lines))
    for p in model.parameters:
        # wrapped, a text's words come back in order, interleaved only with the other columns' words
        assert all(w in text for w in p.source.split()), p.name
        assert all(w in text for w in p.description.split()), p.name


def test_pkpd_show_on_a_wide_terminal_prints_whole_sources(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["show", "msc_salvadori"]) == 0
    out = capsys.readouterr().out
    k_c = pkpd.load_model("msc_salvadori").parameter("k_c")
    assert k_c.source in out  # on one line: nothing wrapped, nothing cut ("Toma 2009 (PMC370..." was cut)
    assert "..." not in out.split("description:")[0]


def test_every_file_a_model_cites_is_in_the_repository():
    cited = set()
    for path in (ROOT / "models").glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        assert "shared/" not in text, f"{path.name} cites the project's private reference folder"
        cited |= set(re.findall(r"\b((?:docs|tests/data)/[\w./-]+\w)", text))
    assert {"docs/literature.md", "docs/reference_model.md"} <= cited
    for rel in sorted(cited):
        assert (ROOT / rel).exists(), f"{rel} is cited by a model file but not in the repository"
