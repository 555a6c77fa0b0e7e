"""`acs_cli.text.wrap`: long lines (doctor rows, the --stats usage line, hints) on a terminal
wrap with a hanging indent, at `·` separators or spaces, never inside a word."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acs_cli.text import MIN_TEXT, display_width, wrap

STATS = "9 prompt + 80 completion = 89 tokens · finish: length · first token 0.21 s · 312.4 tokens/s · total 0.47 s"


def lines_of(text: str, width: int, indent: int | str = 2) -> list[str]:
    return wrap(text, width, indent).split("\n")


# ----------------------------------------------------------------------------- what fits stays


@pytest.mark.parametrize("text", ["", "a", "one two three", "x" * 80, "hint: start the server"])
def test_text_that_fits_is_unchanged(text: str) -> None:
    assert wrap(text, 80, 4) == text


def test_a_line_of_exactly_the_width_stays_whole() -> None:
    line = "aaaa bbbb cccc"  # 14 columns
    assert wrap(line, 14, 2) == line
    assert lines_of(line, 13, 2) == ["aaaa bbbb", "  cccc"]


def test_a_line_one_column_too_long_breaks_at_its_last_space() -> None:
    assert lines_of("alpha beta gamma", 15, 0) == ["alpha beta", "gamma"]


# ------------------------------------------------------------------------- never inside a word


def test_a_word_longer_than_the_line_gets_a_line_of_its_own_and_overflows() -> None:
    url = "https://example.com/" + "a" * 60
    assert lines_of(f"see {url} now", 40, 6) == ["see", f"      {url}", "      now"]


def test_a_long_first_word_is_not_cut_either() -> None:
    word = "x" * 30
    assert lines_of(f"{word} tail", 10, 2) == [word, "  tail"]


@pytest.mark.parametrize("glued", ["ACS_API_BASE=http://gpu-box:8000/v1", "a·b·c·d·e·f·g·h", "--max-tokens"])
def test_words_with_punctuation_or_a_glued_dot_stay_whole(glued: str) -> None:
    lines = lines_of(f"set {glued} and retry", 12, 2)
    assert any(line.strip() == glued for line in lines), lines


def test_a_no_break_space_never_breaks() -> None:
    text = "first token 0.21\u00a0s and more"
    lines = lines_of(text, 17, 0)
    assert "0.21\u00a0s" in "\n".join(lines)
    assert all(not line.endswith("0.21") for line in lines)


# ------------------------------------------------------------------ `·` separators come first


def test_the_stats_line_breaks_before_a_separator_at_80_columns() -> None:
    assert lines_of(STATS, 80, 2) == [
        "9 prompt + 80 completion = 89 tokens · finish: length · first token 0.21 s",
        "  · 312.4 tokens/s · total 0.47 s",
    ]


def test_the_stats_line_at_40_columns_keeps_each_figure_together() -> None:
    assert lines_of(STATS, 40, 2) == [
        "9 prompt + 80 completion = 89 tokens",
        "  · finish: length · first token 0.21 s",
        "  · 312.4 tokens/s · total 0.47 s",
    ]


def test_a_separated_part_longer_than_a_line_flows_word_by_word() -> None:
    text = "short · " + " ".join(["word"] * 8)
    lines = lines_of(text, 20, 2)
    assert lines[0].startswith("short · word")
    assert all(display_width(line) <= 20 for line in lines)


def test_a_separator_at_the_start_is_just_a_word() -> None:
    assert lines_of("· one · two", 7, 0) == ["· one", "· two"]


# ----------------------------------------------------------------------- the hanging indent


@pytest.mark.parametrize("indent, pad", [(0, ""), (3, "   "), ("hint: ", "hint: "), ("  | ", "  | ")])
def test_every_continuation_line_starts_with_the_indent(indent: int | str, pad: str) -> None:
    lines = lines_of(" ".join(["word"] * 30), 30, indent)
    assert len(lines) > 2
    assert not lines[0].startswith(" ")
    assert all(line.startswith(pad) and line[len(pad) :][:1] != " " for line in lines[1:])


@pytest.mark.parametrize("width, indent, pad", [(80, 30, 30), (40, 30, 16), (30, 10, 6), (10, 8, 2), (3, 8, 1), (1, 8, 0)])
def test_an_indent_leaves_at_least_24_columns_for_the_text(width: int, indent: int, pad: int) -> None:
    lines = lines_of(" ".join(["ab"] * 40), width, indent)
    assert len(lines) > 1
    assert all(line[:pad] == " " * pad and line[pad : pad + 1] != " " for line in lines[1:])


def test_line_breaks_in_the_text_are_kept_and_indented() -> None:
    assert lines_of("first line\nsecond line", 80, 4) == ["first line", "    second line"]
    assert lines_of("a\n\nb", 80, 2) == ["a", "", "  b"]


def test_aligned_columns_on_the_first_line_are_kept() -> None:
    row = "✓ TCP connect    127.0.0.1:8000 in 0.3 ms, and then a longer detail"
    lines = lines_of(row, 41, 17)
    assert lines[0] == "✓ TCP connect    127.0.0.1:8000 in 0.3"
    assert lines[1].startswith(" " * 17 + "ms,")


def test_leading_spaces_are_kept_and_trailing_spaces_dropped() -> None:
    assert wrap("   indented   ", 80, 2) == "   indented"
    assert lines_of("aaa bbb   ", 5, 1) == ["aaa", " bbb"]


def test_a_width_below_one_leaves_the_text_alone() -> None:
    assert wrap(STATS, 0, 2) == STATS
    assert wrap(STATS, -5, 2) == STATS


# -------------------------------------------------------------------------------- unicode


def test_display_width_counts_terminal_columns() -> None:
    assert display_width("abc") == 3
    assert display_width("日本語") == 6
    assert display_width("e\u0301") == 1  # e + combining acute
    assert display_width("a\u200bb") == 2  # zero-width space
    assert display_width("\x1b[33mhint\x1b[0m") == 4
    assert display_width("·") == 1
    assert display_width("😀") == 2


def test_wide_characters_count_two_columns() -> None:
    text = "日本語 日本語 日本語"  # 6 + 1 + 6 + 1 + 6 columns
    assert lines_of(text, 13, 0) == ["日本語 日本語", "日本語"]
    assert lines_of(text, 12, 0) == ["日本語", "日本語", "日本語"]


def test_combining_marks_take_no_room() -> None:
    word = "cafe\u0301"  # 4 columns
    assert wrap(f"{word} {word}", 9, 0) == f"{word} {word}"


def test_styles_take_no_room() -> None:
    painted = "\x1b[33mhint:\x1b[0m check the key"
    assert wrap(painted, 20, 2) == painted


# ------------------------------------------------------------------------------ properties

words = st.text(alphabet=st.sampled_from("ab·é日\u00a0-"), min_size=1, max_size=12)


@given(st.lists(words, min_size=0, max_size=30), st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=10))
def test_wrapping_only_moves_spaces(parts: list[str], width: int, indent: int) -> None:
    text = " ".join(parts)
    out = wrap(text, width, indent)
    assert out.split() == text.split()  # the same words, in order, none cut
    assert "\n".join(line.rstrip(" ") for line in out.split("\n")) == out  # no trailing spaces


@given(st.lists(words, min_size=1, max_size=30), st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=10))
def test_only_a_single_overlong_word_exceeds_the_width(parts: list[str], width: int, indent: int) -> None:
    text = " ".join(parts)
    pad = min(indent, max(min(2, width // 2), width - MIN_TEXT))
    for number, line in enumerate(wrap(text, width, indent).split("\n")):
        if display_width(line) > width:
            body = line[pad:] if number else line
            assert " " not in body, (line, width)
        if number:
            assert line.startswith(" " * pad)


def test_wrap_is_pure() -> None:
    assert wrap(STATS, 40, 2) == wrap(STATS, 40, 2)
    assert STATS == "9 prompt + 80 completion = 89 tokens · finish: length · first token 0.21 s · 312.4 tokens/s · total 0.47 s"
