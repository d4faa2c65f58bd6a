"""The docs' state table is generated from the Machine and must not drift from it."""

from pathlib import Path

from statemachine.describe import markdown_table

ROOT = Path(__file__).resolve().parent.parent


def test_architecture_doc_shows_the_machine_generated_state_table() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    documented = text.split("<!-- state-table:start -->")[1].split("<!-- state-table:end -->")[0]
    assert documented.strip() == markdown_table()


def test_readme_gives_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
