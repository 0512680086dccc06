"""The judges' agreement figures and verdict handling, each against a
computation done by hand (no database)."""

from __future__ import annotations

import math

import pytest

from ratings.judges import (
    average_ranks,
    cohen_kappa,
    position_bias_rate,
    spearman,
    two_way_agreement,
)
from votes.judging import Conversation, NoVerdict, combine, parse_verdict, render_prompt

# (human, judge) verdicts in the same orientation.
PAIRS = [("a", "a"), ("a", "a"), ("a", "b"), ("b", "b"), ("b", "tie"), ("tie", "tie"), ("both_bad", "tie"), ("b", "a")]


def test_two_way_agreement_leaves_out_ties_and_both_bad():
    # Kept: (a,a) (a,a) (a,b) (b,b) (b,a): 3 equal of 5.
    assert two_way_agreement(PAIRS) == (0.6, 5)
    assert two_way_agreement([("tie", "a"), ("both_bad", "b")]) == (None, 0)


def test_three_way_kappa_by_hand():
    # A / B / tie, both bad as tie. Equal labels: (a,a) ×2, (b,b), (tie,tie) ×2 → p_o = 5/8.
    # People: a 3, b 3, tie 2; judge: a 3, b 2, tie 3 → p_e = (3·3 + 3·2 + 2·3) / 64 = 21/64.
    # kappa = (5/8 − 21/64) / (1 − 21/64) = (19/64) / (43/64) = 19/43.
    kappa, observed, n = cohen_kappa(PAIRS)
    assert n == 8
    assert observed == pytest.approx(5 / 8)
    assert kappa == pytest.approx(19 / 43)


def test_kappa_is_one_for_perfect_agreement_and_undefined_for_one_shared_label():
    assert cohen_kappa([("a", "a"), ("b", "b"), ("tie", "tie")])[0] == pytest.approx(1.0)
    assert cohen_kappa([("a", "a"), ("a", "a")])[0] is None  # p_e = 1
    assert cohen_kappa([]) == (None, None, 0)
    # Agreement no better than chance: people always a, judge half a half b → p_o = 1/2, p_e = 1/2, kappa 0.
    assert cohen_kappa([("a", "a"), ("a", "b")])[0] == pytest.approx(0.0)


def test_position_bias_rate_is_the_share_of_flipped_verdicts():
    assert position_bias_rate([("a", "a"), ("a", "b"), ("tie", "tie"), ("b", "a")]) == (0.5, 4)
    assert position_bias_rate([("a", "")]) == (None, 0)  # an order not judged is not counted


def test_spearman_by_hand_with_tied_ratings():
    # y ranks: 5→1, 6→2, 7→3.5, 8→5, 7→3.5; centred x ranks (−2,−1,0,1,2), y ranks (−2,−1,.5,2,.5):
    # Σ = 4+1+0+2+1 = 8, Σx² = 10, Σy² = 9.5 → rho = 8 / √95.
    assert list(average_ranks([5, 6, 7, 8, 7])) == [1, 2, 3.5, 5, 3.5]
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1], [2]) is None
    assert spearman([1, 2], [3, 3]) is None


def test_verdict_is_the_last_double_bracket_and_a_missing_one_is_an_error():
    assert parse_verdict('Format: "[[A]]" or "[[B]]". B explains more. [[B]]') == (
        "B",
        'Format: "[[A]]" or "[[B]]". B explains more.',
    )
    assert parse_verdict("[[C]]") == ("C", "")
    with pytest.raises(NoVerdict):
        parse_verdict("A is better, clearly.")
    with pytest.raises(NoVerdict):
        parse_verdict("[A]")


def test_inconsistent_orders_are_a_tie():
    assert combine("a", "a") == "a"
    assert combine("b", "b") == "b"
    assert combine("a", "b") == "tie"
    assert combine("tie", "a") == "tie"


def test_prompt_puts_each_answer_between_mt_bench_markers_and_leaves_braces_alone():
    template = (
        "[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n"
        "[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n"
        "[The End of Assistant B's Answer]"
    )
    conv = Conversation(["Say {answer_b}"], ["use {question} here"], ["plain"])
    text = render_prompt(template, conv)
    assert "[User Question]\nSay {answer_b}\n" in text
    assert "[The Start of Assistant A's Answer]\nuse {question} here\n[The End of Assistant A's Answer]" in text
    assert "[The Start of Assistant B's Answer]\nplain\n[The End of Assistant B's Answer]" in text
    swapped = render_prompt(template, conv.swapped())
    assert "[The Start of Assistant A's Answer]\nplain\n" in swapped
    two = render_prompt(template, Conversation(["q1", "q2"], ["a1", "a2"], ["b1", "b2"]))
    assert "Turn 1: q1\n\nTurn 2: q2" in two
    assert "### User:\nq1\n\n### Assistant A:\na1\n\n### User:\nq2\n\n### Assistant A:\na2" in two
