"""Where each character of a YAML scalar's value lies in the file, so an error inside a `when` points at it.

PyYAML marks only the start and end of a scalar. The value differs from the source text by quoting
(`''` in single quotes, `\\"` and other escapes in double quotes), by line folding (a line break between two
lines becomes a space, blank lines become newlines) and, in block scalars (`|` `>`), by the indentation
taken off each line. `source_offsets` replays those rules to map each value character back to its
character index in the file; `line_col` turns an index into a 1-based line and column.

When the replay does not reproduce the value exactly (a YAML corner this module does not model), the
map falls back to counting from the scalar's start, so an error is still reported, only less precisely.

>>> import yaml
>>> text = "when: 'a == ''x'' and b'"
>>> node = yaml.compose(text).value[0][1]
>>> line_col(text, source_offsets(text, node)[node.value.index("and")])
(1, 19)
"""

from __future__ import annotations

import re

import yaml

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BREAKS = "\r\n"
_BLANK = " \t"
# one-character escapes of double-quoted scalars; \x \u \U take 2, 4 and 8 hex digits
_ESCAPES = {
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "t": "\t",
    "\t": "\t",
    "n": "\n",
    "v": "\v",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_HEX = {"x": 2, "u": 4, "U": 8}


def source_offsets(text: str, node: yaml.ScalarNode) -> list[int]:
    """Index into `text` of each character of `node.value`, plus one entry for the end of the value."""
    start, end = node.start_mark.index, node.end_mark.index
    if node.style in ("|", ">"):
        mapped = _block(text, start, end, node.value)
    else:
        quoted = node.style in ("'", '"')
        mapped = _flow(text, start + quoted, end - quoted, node.style)
    if mapped is not None:
        chars, offsets = mapped
        if "".join(chars) == node.value:
            return [*offsets, offsets[-1] + 1 if offsets else end]
    first = start + (1 if node.style in ("'", '"') else 0)
    return [first + i for i in range(len(node.value) + 1)]


def line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character `index` (\\r\\n, \\r and \\n each end a line, as in YAML)."""
    line, line_start = 1, 0
    for m in _LINE_BREAK.finditer(text, 0, index):
        line, line_start = line + 1, m.end()
    return line, index - line_start + 1


def _flow(text: str, i: int, end: int, style: str | None) -> tuple[list[str], list[int]] | None:
    """Plain, single- and double-quoted scalars: escapes, and folding of line breaks."""
    chars: list[str] = []
    offsets: list[int] = []
    pending: list[tuple[str, int]] = []  # blanks kept only if no line break follows them
    while i < end:
        c = text[i]
        if c in _BLANK:
            pending.append((c, i))
            i += 1
        elif c in _BREAKS:
            pending.clear()  # trailing blanks of a line are not part of the value
            i = _fold(text, i, end, chars, offsets)
        elif style == "'" and c == "'" and text[i + 1 : i + 2] == "'":
            _flush(pending, chars, offsets)
            chars.append("'")
            offsets.append(i)
            i += 2
        elif style == '"' and c == "\\":
            _flush(pending, chars, offsets)
            nxt = text[i + 1 : i + 2]
            if nxt and nxt in _BREAKS:  # an escaped line break joins the lines with nothing
                i = _skip_break(text, i + 1)
                while i < end and text[i] in _BLANK:
                    i += 1
            elif nxt in _HEX:
                width = _HEX[nxt]
                try:
                    chars.append(chr(int(text[i + 2 : i + 2 + width], 16)))
                except ValueError:
                    return None
                offsets.append(i)
                i += 2 + width
            elif nxt in _ESCAPES:
                chars.append(_ESCAPES[nxt])
                offsets.append(i)
                i += 2
            else:
                return None
        else:
            _flush(pending, chars, offsets)
            chars.append(c)
            offsets.append(i)
            i += 1
    _flush(pending, chars, offsets)
    return chars, offsets


def _fold(text: str, i: int, end: int, chars: list[str], offsets: list[int]) -> int:
    """Consume a run of line breaks (and the blanks around them): one break is a space, n are n-1 newlines."""
    first = i
    breaks = 0
    while i < end and text[i] in _BREAKS + _BLANK:
        if text[i] in _BREAKS:
            breaks += 1
            i = _skip_break(text, i)
        else:
            i += 1
    if breaks == 1:
        chars.append(" ")
        offsets.append(first)
    else:
        chars.extend("\n" * (breaks - 1))
        offsets.extend([first] * (breaks - 1))
    return i


def _skip_break(text: str, i: int) -> int:
    return i + 2 if text[i : i + 2] == "\r\n" else i + 1


def _flush(pending: list[tuple[str, int]], chars: list[str], offsets: list[int]) -> None:
    for c, at in pending:
        chars.append(c)
        offsets.append(at)
    pending.clear()


def _block(text: str, start: int, end: int, value: str) -> tuple[list[str], list[int]] | None:
    """Block scalars: each content line appears verbatim after its indentation; the characters between
    lines in the value (newlines, or a space where `>` folded a break) map to the preceding line break.
    """
    header_end = _line_end(text, start)
    lines: list[tuple[int, str]] = []  # (index of the line's first character, the line without its break)
    i = _skip_break(text, header_end) if header_end < len(text) else header_end
    while i < end:
        stop = _line_end(text, i)
        lines.append((i, text[i:stop]))
        i = _skip_break(text, stop) if stop < len(text) else stop
    indents = [len(s) - len(s.lstrip(" ")) for _, s in lines if s.strip()]
    # the least-indented content line sets the indentation (an explicit `|2` indicator is not modelled)
    indent = min(indents) if indents else 0
    chars: list[str] = []
    offsets: list[int] = []
    pos = 0
    last_break = start
    for line_start, line in lines:
        content = line[indent:]
        if content:
            while pos < len(value) and not value.startswith(content, pos) and value[pos] in " \n":
                chars.append(value[pos])
                offsets.append(last_break)
                pos += 1
            if not value.startswith(content, pos):
                return None
            chars.extend(content)
            offsets.extend(range(line_start + indent, line_start + indent + len(content)))
            pos += len(content)
        last_break = line_start + len(line)
    chars.extend(value[pos:])  # chomping keeps the final newlines
    offsets.extend([last_break] * (len(value) - pos))
    return chars, offsets


def _line_end(text: str, i: int) -> int:
    while i < len(text) and text[i] not in _BREAKS:
        i += 1
    return i
