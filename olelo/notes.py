"""Generated sections of the lab's Markdown files (RESULTS.md): a section between a
begin and an end marker line is written by a script and never edited by hand.
`make notes` (scripts/notes_tables.py) writes RESULTS.md and keeps its memory
section; `make mem-profile` (scripts/memory_guidelines.py) rewrites that section."""

from __future__ import annotations

from olelo.cli import UserError

MEMORY_BEGIN, MEMORY_END = "<!-- memory-guidelines:begin -->", "<!-- memory-guidelines:end -->"


def has_section(text: str, begin: str = MEMORY_BEGIN, end: str = MEMORY_END) -> bool:
    """Exactly one begin marker, then exactly one end marker."""
    return text.count(begin) == 1 and text.count(end) == 1 and text.index(begin) < text.index(end)


def section(text: str, begin: str = MEMORY_BEGIN, end: str = MEMORY_END) -> str | None:
    """The marked section of `text`, markers included; None when it has none (or a broken one)."""
    return text[text.index(begin):text.index(end) + len(end)] if has_section(text, begin, end) else None


def replace_section(text: str, new_section: str, where: str = "the file", begin: str = MEMORY_BEGIN,
                    end: str = MEMORY_END) -> str:
    """`text` with its marked section replaced by `new_section` (which carries the markers)."""
    if not has_section(text, begin, end):
        raise UserError(f"{where} needs exactly one line {begin} followed by one line {end} where the generated "
                        "section goes; add them (the section between them is generated)")
    return text[:text.index(begin)] + new_section + text[text.index(end) + len(end):]
