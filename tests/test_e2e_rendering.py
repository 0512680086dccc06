"""What a voter sees of a real-shaped answer set, in a real Chromium: an
MT-bench-style two-turn question (FastChat llm_judge layout, loaded with
``import_answers``) whose answers hold code, math, a list with single
newlines and a table; then voting with the keyboard and copying an answer.

Screenshots land in docs/screenshots/ (arena-rendering*.png).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from arena.models import Answer, Battle, Question
from tests.services import PHONE
from votes.models import Vote

pytestmark = [pytest.mark.browser]

PROMPTS = [
    "Recommend three classic novels, one per line.\nThen a reading order.\nThen a table of their years.",
    "Now write Python that averages two numbers, and give the mean of 0 and 1 as a formula.",
]
ANSWERS = {
    "kite-7b": [
        "Three novels, one per line:\nDune\nEmma\nUlysses\n\n"
        "Reading order:\n1. Start with *Emma*\n2. Then *Dune*\n3. Finish with *Ulysses*\n\n"
        "| Novel | Year |\n|---|--:|\n| Emma | 1815 |\n| Dune | 1965 |\n| Ulysses | 1922 |",
        "```python\ndef mean(a, b):\n    # the midpoint\n    return (a + b) / 2\n```\n\n"
        "The mean of 0 and 1 is\n\n$$\\frac{1}{2}$$\n\nand the square of the mean is $x^2$ with $x = \\frac{1}{2}$.",
    ],
    "lumen-8b": [
        "Dune\nEmma\nUlysses\n\nOrder:\n1. Dune\n2. Emma\n3. Ulysses\n\n"
        "| Novel | Year |\n|---|---|\n| Dune | 1965 |\n| Emma | 1815 |\n| Ulysses | 1922 |",
        "```python\nprint((0 + 1) / 2)  # 0.5\n```\n"
        "That is $$\\frac{1}{2}$$, and $x^2$ of it is a quarter. (Books cost $5 and $10 aside.)",
    ],
}


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def write_bench(root: Path) -> Path:
    """A one-question MT-bench directory: question.jsonl + model_answer/*.jsonl."""
    bench = root / "mini_mt_bench"
    (bench / "model_answer").mkdir(parents=True)
    (bench / "question.jsonl").write_text(jsonl([{"question_id": 81, "category": "writing", "turns": PROMPTS}]))
    for model, turns in ANSWERS.items():
        row = {"question_id": 81, "answer_id": f"{model}-81", "model_id": model,
               "choices": [{"index": 0, "turns": turns}], "tstamp": 1700000000.0}  # fmt: skip
        (bench / "model_answer" / f"{model}.jsonl").write_text(jsonl([row]))
    return bench


@pytest.fixture
def mt_bench(tmp_path, transactional_db):
    call_command("import_answers", str(write_bench(tmp_path)), stdout=io.StringIO(), stderr=io.StringIO())
    assert Question.objects.get().turns == PROMPTS
    assert Answer.objects.count() == 2


def open_conversation(page, url: str) -> Battle:
    """Open /arena/; make the battle the whole two-turn conversation (the way
    an answer-set battle fills ``turns``), then show it again."""
    page.goto(f"{url}/arena/")
    battle = Battle.objects.select_related("model_a", "model_b").get(
        id=page.locator("#battle").get_attribute("data-battle")
    )
    question = Question.objects.get()
    by_model = {a.model_id: a.turns for a in Answer.objects.filter(question=question)}
    want = [{"prompt": p, "a": a, "b": b}
            for p, a, b in zip(question.turns, by_model[battle.model_a_id], by_model[battle.model_b_id])]  # fmt: skip
    if battle.turns != want:
        Battle.objects.filter(id=battle.id).update(turns=want)
    page.reload()
    assert page.locator("#battle").get_attribute("data-battle") == str(battle.id)
    battle.refresh_from_db()
    return battle


def line_tops(page, selector: str, words: list[str]) -> list[float]:
    """The on-screen y of each word's text inside the element (a Range's box,
    so it measures where the browser drew the text, not the markup)."""
    return page.locator(selector).evaluate(
        """(el, words) => words.map(w => {
            const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                const i = n.data.indexOf(w);
                if (i >= 0) { const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + w.length);
                              return r.getBoundingClientRect().top; }
            }
            return null;
        })""",
        words,
    )


def test_a_two_turn_answer_set_battle_renders_faithfully_and_votes_by_keyboard(new_context, live_server, mt_bench,
                                                                               shots):  # fmt: skip
    from playwright.sync_api import expect

    context = new_context(viewport={"width": 1280, "height": 900}, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    battle = open_conversation(page, live_server.url)

    # Both turns, in order, before the vote: prompt, answer A, answer B each time.
    turns = page.locator("#battle .turn")
    expect(turns).to_have_count(2)
    for i, turn in enumerate(battle.turns):
        section = turns.nth(i)
        expect(section.locator(".prompt")).to_be_visible()
        assert turn["prompt"].split("\n")[0] in section.locator(".prompt").inner_text()
        for side in "ab":
            expect(section.locator(f'.answer[data-side="{side}"]')).to_be_visible()
    boxes = [turns.nth(i).locator(sel).bounding_box() for i in range(2) for sel in (".prompt", '.side[data-side="a"]')]
    assert [b["y"] for b in boxes] == sorted(b["y"] for b in boxes)
    expect(page.locator("#reveal-a")).to_be_hidden()
    # Rendering adds no identity: neither model's name is anywhere in the page.
    assert not [m for m in ANSWERS if m in page.content()]

    # Code: Pygments token spans inside both code blocks (turn 2).
    for side in "ab":
        code = turns.nth(1).locator(f'.answer[data-side="{side}"] pre.highlight code.language-python')
        expect(code).to_have_count(1)
        assert code.locator("span.k, span.nb, span.mi").count() >= 2
        assert code.locator("span.c1").count() == 1  # the comment
    # Math: MathML, drawn (a fraction with a box), and no TeX left as text.
    assert page.locator(".answer math").count() >= 4
    frac = page.locator('.answer math[display="block"] mfrac').first
    assert frac.bounding_box()["height"] > 0
    assert "\\frac" not in page.locator("#battle").inner_text()
    assert "$5 and $10" in page.locator("#battle").inner_text()  # prose dollars stay prose
    # The table is a table.
    for side in "ab":
        table = turns.nth(0).locator(f'.answer[data-side="{side}"] table')
        expect(table).to_have_count(1)
        assert table.locator("tbody tr").count() == 3
    # One novel per line, as written: the browser draws them on three lines.
    for side in "ab":
        tops = line_tops(
            page, f'#battle .turn:first-child .answer[data-side="{side}"] > p:first-child', ["Dune", "Emma", "Ulysses"]
        )
        assert None not in tops and len(set(round(t) for t in tops)) == 3, tops
        assert tops == sorted(tops)
    items = turns.nth(0).locator('.answer[data-side="a"] ol li')
    expect(items).to_have_count(3)
    item_tops = [items.nth(i).bounding_box()["y"] for i in range(3)]
    assert item_tops[0] < item_tops[1] < item_tops[2]

    # The shortcuts are on the buttons.
    for winner, key in (("a", "A"), ("b", "B"), ("tie", "T"), ("both_bad", "X")):
        button = page.locator(f'#vote-buttons [data-winner="{winner}"]')
        expect(button.locator("kbd")).to_have_text(key)
        assert button.get_attribute("aria-keyshortcuts") == key
    page.screenshot(path=shots / "arena-rendering.png", full_page=True)

    # Copy: the first answer's markdown source lands on the clipboard.
    turns.nth(0).locator('.side[data-side="a"] button.copy').click()
    expect(turns.nth(0).locator('.side[data-side="a"] button.copy')).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == battle.turns[0]["a"]
    turns.nth(1).locator('.side[data-side="b"] button.copy').click()
    assert page.evaluate("navigator.clipboard.readText()") == battle.turns[1]["b"]

    # A letter typed into a text field, or with a modifier, is not a vote.
    page.evaluate("document.body.append(Object.assign(document.createElement('input'), {id: 'scratch'}))")
    page.locator("#scratch").press_sequentially("abtx")
    page.locator("#scratch").blur()
    page.keyboard.press("Control+b")
    page.keyboard.press("Alt+a")
    expect(page.locator("#status")).to_be_hidden()
    assert not Vote.objects.filter(battle=battle).exists()

    # "B" votes B: stored, names revealed in every turn.
    page.keyboard.press("b")
    expect(page.locator("#reveal-b")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("B is better")
    assert Vote.objects.get(battle=battle).winner == "b"
    expect(page.locator('.reveal[data-side="b"]')).to_have_count(2)
    for i in range(2):
        expect(page.locator('.reveal[data-side="b"]').nth(i)).to_have_text(f"Model B: {battle.model_b.name}")
        expect(page.locator('.side[data-side="b"]').nth(i)).to_have_class("side winner")
    # Further keys do nothing: one vote per battle.
    page.keyboard.press("a")
    page.keyboard.press("t")
    assert Vote.objects.filter(battle=battle).count() == 1
    assert errors == []


def test_the_rendered_conversation_reads_on_a_phone(phone, live_server, mt_bench, shots):
    from playwright.sync_api import expect

    page = phone.new_page()
    open_conversation(page, live_server.url)
    expect(page.locator("#battle .turn")).to_have_count(2)
    # Wide code, formulas and tables scroll inside their box; the page never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # Shortcut hints are for keyboards: hidden on a touch screen, the buttons still fit.
    expect(page.locator("#vote-buttons kbd").first).to_be_hidden()
    for winner in ("a", "b", "tie", "both_bad"):
        box = page.locator(f'[data-winner="{winner}"]').bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    page.screenshot(path=shots / "arena-rendering-phone.png", full_page=False)
    page.locator("#battle .turn").nth(1).scroll_into_view_if_needed()
    page.screenshot(path=shots / "arena-rendering-phone-turn2.png", full_page=False)


LIVE_ANSWER = "Rivers, one per line:\nNile\nAmazon\nYangtze\n\n```python\nrivers = ['Nile', 'Amazon']\n```\n\nShare: $\\frac{1}{2}$"


def test_a_live_answer_streams_as_plain_lines_then_is_rendered_and_keys_wait_for_the_prompt_box(
    desktop, asgi_server, transactional_db
):
    live_server = asgi_server  # streams need the ASGI server: the WSGI live_server buffers them whole
    from playwright.sync_api import expect

    from arena.models import ArenaModel
    from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI().start()
    try:
        for name in ("saffron-12b", "indigo-3b"):
            ArenaModel.objects.create(
                name=name,
                provider_kind=ArenaModel.Provider.OPENAI,
                provider_settings={"base_url": fake.base_url, "model": name, "timeout": 5},
            )
            fake.script(name, text=LIVE_ANSWER + f" ({name[:3]})", delay=0.15)
        page = desktop.new_page()
        page.goto(f"{live_server.url}/arena/")
        page.fill("#prompt-input", "Name rivers, **one** per line.")
        page.click("#send")
        side_a = page.locator('.turn >> nth=0 >> .answer[data-side="a"]')

        # While it streams: plain text that keeps its line breaks.
        expect(side_a).to_contain_text("Nile")
        assert "stream" in side_a.get_attribute("class")
        assert side_a.locator("math, pre").count() == 0
        # The prompt is rendered as soon as the stream starts.
        expect(page.locator(".turn .prompt .text strong")).to_have_text("one")

        # Done: the server's rendering replaces the text.
        expect(side_a.locator("math")).to_have_count(1)
        assert "stream" not in side_a.get_attribute("class")
        assert side_a.locator("pre.highlight span.n").count() >= 1
        tops = line_tops(page, '.turn .answer[data-side="a"] > p:first-child', ["Nile", "Amazon", "Yangtze"])
        assert len({round(t) for t in tops}) == 3, tops
        expect(page.locator('[data-winner="tie"]')).to_be_enabled()
        battle = Battle.objects.get()
        assert page.locator('.side[data-side="a"] .copy').get_attribute("data-copy") == battle.turns[0]["a"]

        # Letters typed into the follow-up box are text, not votes.
        page.locator("#prompt-input").press_sequentially("a tax")
        expect(page.locator("#prompt-input")).to_have_value("a tax")
        assert not Vote.objects.exists()
        # Out of the box, T is a tie.
        page.locator("#prompt-input").blur()
        page.keyboard.press("t")
        expect(page.locator("#reveal-a")).to_be_visible()
        assert Vote.objects.get(battle=battle).winner == "tie"
    finally:
        fake.stop()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_admin_shows_the_conversation_rendered_in_light_and_dark(new_context, live_server, mt_bench, scheme, shots):
    from playwright.sync_api import expect

    from arena.roles import ADMIN
    from tests.admin.conftest import staff

    staff("olga", ADMIN)
    voter_page = new_context().new_page()
    battle = open_conversation(voter_page, live_server.url)
    page = new_context(viewport={"width": 1400, "height": 950}, color_scheme=scheme).new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/arena/battle/{battle.id}/change/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", "pw-olga")
    page.locator('input[type="submit"]').click()

    table = page.locator("table.arena-battle")
    expect(table.locator(".arena-turn")).to_have_count(2)
    code = table.locator("pre.highlight", has=page.locator("span.k")).first
    expect(code.locator("span.k").first).to_be_visible()
    assert table.locator("math").count() >= 4 and table.locator("td table").count() == 2
    bg = code.evaluate("el => getComputedStyle(el).backgroundColor")
    if scheme == "dark":
        assert bg == "rgb(13, 17, 23)"  # github-dark's background
        # Keywords are readable on it: not the light theme's dark green.
        assert code.locator("span.k").first.evaluate("el => getComputedStyle(el).color") != "rgb(0, 128, 0)"
    else:
        assert bg != "rgb(13, 17, 23)"
    page.screenshot(path=shots / f"admin-battle-rendered-{scheme}.png", full_page=True)


HOSTILE_MATH_AND_CODE = {
    "hostile-math": {
        "Show me": 'Inline $\\text{<img src=x onerror="window.__pwned=5">}$ and\n\n'
        '$$a</math><img src=x onerror="window.__pwned=6"><math>$$\n\n'
        "$\\href{javascript:window.__pwned=7}{click me}$ and \\(\\text{</math><script>window.__pwned=8</script>}\\)\n\n"
        '$$\\mathrm{"><svg onload="window.__pwned=9">}$$'
    },
    "hostile-code": {
        "Show me": '```html\n<script>window.__pwned = 10</script>\n<img src=x onerror="window.__pwned=11">\n```\n\n'
        '```"><img src=x onerror=window.__pwned=12>\nx\n```\n\n'
        "[a](javascript:window.__pwned=13) [b](jav&#x09;ascript:window.__pwned=14) "
        "[c](java%73cript:window.__pwned=15) <javascript:window.__pwned=16>"
    },
}


def test_html_hidden_in_math_code_and_links_never_runs(desktop, live_server, transactional_db):
    from playwright.sync_api import expect

    from tests.arena.factories import answer_set_with

    answer_set_with(HOSTILE_MATH_AND_CODE)
    page = desktop.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{live_server.url}/arena/")
    page.wait_for_load_state("networkidle")

    answers = page.locator("#battle .answer")
    assert page.locator("#battle .answer math").count() >= 2  # the harmless formulas still render
    assert answers.locator("script, img, svg, iframe, style").count() == 0
    assert page.locator("#battle [onerror], #battle [onload], #battle [href]:not([href^='http'])").count() == 0
    shown = "\n".join(answers.all_inner_texts())
    assert '<img src=x onerror="window.__pwned=11">' in shown  # code is text
    # Every link-looking thing is clicked: nothing runs.
    for i in range(answers.locator("a").count()):
        answers.locator("a").nth(i).click(modifiers=["Alt"])
    for text in ("a", "b", "c"):
        expect(answers.get_by_text(f"[{text}](", exact=False).first).to_be_visible()
    page.locator('[data-winner="tie"]').click()
    expect(page.locator("#reveal-a")).to_be_visible()
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
