"""arena/textmemo.py: figures remembered per text (by hash and length), not
the texts themselves."""

from __future__ import annotations

from arena.textmemo import per_text


def test_a_text_is_computed_once_and_equal_texts_share_the_result():
    calls = []

    @per_text(size=10)
    def length(text, extra=0):
        calls.append(text)
        return len(text) + extra

    first = "x" * 1000
    same = "".join(["x"] * 1000)  # an equal text, another object
    assert first is not same
    assert length(first) == length(same) == 1000
    assert calls == [first]
    assert length(first, 5) == 1005  # other arguments: another result
    assert len(calls) == 2


def test_the_memory_is_bounded_and_keeps_no_text():
    @per_text(size=3)
    def upper(text):
        return text.upper()

    texts = [f"text {i}" * 100 for i in range(10)]
    assert [upper(t) for t in texts] == [t.upper() for t in texts]
    assert 1 <= len(upper.memo) <= 3
    assert not any(isinstance(part, str) for key in upper.memo for part in key)


def test_an_empty_text_is_computed_each_time():
    calls = []

    @per_text()
    def count(text):
        calls.append(text)
        return 0

    count("")
    count("")
    count(None)
    assert len(calls) == 3
