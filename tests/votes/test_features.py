"""Token counts for style control and the long-prompt view: CJK text counts
per character, and stored votes can be brought up to date."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tests.arena.factories import BattleFactory
from votes.features import style_counts, token_count
from votes.models import Vote
from votes.services import vote_record

# 39 Han characters (plus two commas and a full stop), and its English translation.
CHINESE = "人工智能正在改变我们的生活方式，它可以帮助医生准确地诊断疾病，也能让学生高效地学习。"
ENGLISH = (
    "Artificial intelligence is changing the way we live: it can help doctors diagnose "
    "diseases accurately, and help students learn efficiently."
)


def test_each_han_character_is_a_token():
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in CHINESE)
    assert han == 39
    assert token_count(CHINESE) == 39 + 3  # the characters and the three punctuation marks
    # about like its translation (words and punctuation), not 6 as one "word" per run
    assert 0.5 < token_count(CHINESE) / token_count(ENGLISH) < 2.5


def test_kana_and_hangul_count_per_character_and_latin_words_stay_whole():
    assert token_count("日本語のテキスト") == 8
    assert token_count("한국어 문장") == 5
    assert token_count("mixed 中文 words, x_y and abc123") == 8
    assert token_count("The quick brown fox jumps over the lazy dog.") == 10


def test_style_tokens_of_a_chinese_answer_are_comparable_to_an_english_one():
    zh, en = style_counts(CHINESE * 3), style_counts(ENGLISH * 3)
    assert zh[1:] == en[1:] == (0, 0, 0)
    assert zh[0] > en[0] / 2


@pytest.mark.django_db
def test_recompute_features_updates_stale_votes_once():
    battle = BattleFactory(prompt=CHINESE, response_a=CHINESE * 2, response_b="好。", ready_at=None)
    vote = vote_record(battle_id=battle.id, voter=battle.voter, winner="a")
    assert (vote.prompt_tokens, vote.style_a_tokens, vote.style_b_tokens) == (42, 84, 2)
    # what the old counter stored: one token per run of Han characters
    Vote.objects.filter(id=vote.id).update(prompt_tokens=6, style_a_tokens=12, style_b_tokens=2)
    out = io.StringIO()
    call_command("recompute_features", "--dry-run", stdout=out)
    assert "1 would change" in out.getvalue()
    assert Vote.objects.get(id=vote.id).prompt_tokens == 6
    call_command("recompute_features", "--chunk", "1", stdout=out)
    fresh = Vote.objects.get(id=vote.id)
    assert (fresh.prompt_tokens, fresh.style_a_tokens, fresh.style_b_tokens) == (42, 84, 2)
    out = io.StringIO()
    call_command("recompute_features", stdout=out)
    assert "1 votes with a battle checked, 0 changed" in out.getvalue()
