"""An error inside a `when` points at the right character of the file, whatever the YAML scalar style."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.positions import line_col, source_offsets

TEXT = st.text(alphabet="ab'\"\\=.( )\t\n_é", min_size=1, max_size=40)
STYLES = [None, "'", '"', "|", ">"]


def when_node(document: str) -> yaml.ScalarNode:
    root = yaml.compose(document, Loader=yaml.SafeLoader)
    return next(v for k, v in root.value if k.value == "when")


@settings(max_examples=300, deadline=None)
@given(value=TEXT, style=st.sampled_from(STYLES), width=st.sampled_from([12, 30, 80]), indent=st.sampled_from([2, 4]))
def test_every_character_of_the_value_maps_to_itself_in_the_file(value, style, width, indent) -> None:
    document = yaml.dump({"id": "r", "when": value}, default_style=style, width=width, indent=indent)
    node = when_node(document)
    assert node.value == value
    offsets = source_offsets(document, node)
    assert len(offsets) == len(value) + 1
    for char, at in zip(value, offsets, strict=False):
        if char in " \n" or (node.style == '"' and document[at] == "\\"):
            continue  # folded breaks and escapes map to the break or the backslash
        assert document[at] == char


@pytest.mark.parametrize(
    ("document", "line", "column"),
    [
        ("when: 'a == ''x'' and bad'\n", 1, 23),
        ('when: "a == \\"x\\" and bad"\n', 1, 23),
        ('when: "a\\tand bad"\n', 1, 15),
        ("when: a\n  and bad\n", 2, 7),
        ("when: >\n  a\n\n  and bad\n", 4, 7),
        ("when: |\n  a\n    and bad\n", 3, 9),
        ("when: a and bad\r\n", 1, 13),
        ("x: 1\r\nwhen: a and bad\r\n", 2, 13),
    ],
)
def test_known_styles_point_at_the_word(document: str, line: int, column: int) -> None:
    node = when_node(document)
    assert line_col(document, source_offsets(document, node)[node.value.index("bad")]) == (line, column)
