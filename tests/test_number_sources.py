"""Every measured number in README.md and docs/ has a committed source under results/ (benchmarks/number_sources.py),
or is listed there as a setting with its reason."""

from __future__ import annotations

from benchmarks.number_sources import NOT_MEASURED, ROOT, documents, numbers


def test_every_number_in_readme_and_docs_has_a_source_that_exists():
    every = [n for doc in documents() for n in numbers(doc)]
    assert len(every) > 50  # the headline table alone holds more: the scanner sees the documents
    missing = [f"{n.file}:{n.line} {n.text}" for n in every if n.source is None]
    assert not missing, "numbers without a results/ source (link the record or drop the number):\n" + "\n".join(missing)
    sourced = {n.source for n in every if n.source and n.source.startswith("results/")}
    assert sourced and all((ROOT / s).exists() for s in sourced), [s for s in sourced if not (ROOT / s).exists()]


def test_each_setting_listed_as_not_measured_still_occurs():
    text = "\n".join(doc.read_text() for doc in documents())
    assert [t for t in NOT_MEASURED if t not in text] == []


def test_an_unsourced_measurement_is_found_and_a_linked_one_is_not(tmp_path):
    doc = tmp_path / "page.md"
    doc.write_text(
        "Our trick gains 1.3 points in 12 min.\n\n"
        "| arm | acc |\n|---|---|\n| a | 85.1% |\n\n"
        "Measured in [the record](results/x/report.md): 85.2 ± 0.3%.\n\n"
        "```bash\necho 99% inside a fence\n```\n"
    )
    found = [(n.text, n.source) for n in numbers(doc)]
    assert found == [
        ("1.3 points", None),
        ("12 min", None),
        ("85.1%", None),  # a table counts the paragraph above it, which names no record
        ("± 0.3", "results/x/report.md"),  # nothing from the fenced block
    ]
