"""German sentence splitting of a streamed reply."""

from __future__ import annotations

import pytest

from dialogue.sentences import SentenceSplitter, find_sentence_end, first_clause_end


def split_streamed(text: str, step: int = 3, **options: int) -> list[str]:
    """Feeds ``text`` in small deltas, as a model streams it, then flushes."""
    splitter = SentenceSplitter(**options)
    out: list[str] = []
    for i in range(0, len(text), step):
        out += splitter.push(text[i : i + step])
    return out + splitter.flush()


TABLE = [
    ("Guten Tag. Wie kann ich helfen?", ["Guten Tag.", "Wie kann ich helfen?"]),
    ("Das geht z. B. online. Oder am Telefon.", ["Das geht z. B. online.", "Oder am Telefon."]),
    ("Das geht z.B. online. Oder am Telefon.", ["Das geht z.B. online.", "Oder am Telefon."]),
    ("Dr. Müller ist da. Bitte warten.", ["Dr. Müller ist da.", "Bitte warten."]),
    ("Ihre Nr. 12345 ist notiert. Danke.", ["Ihre Nr. 12345 ist notiert.", "Danke."]),
    ("Das dauert ca. zehn Minuten. Bis gleich.", ["Das dauert ca. zehn Minuten.", "Bis gleich."]),
    ("Es kostet 1.000 Euro. Das ist viel.", ["Es kostet 1.000 Euro.", "Das ist viel."]),
    (
        "Der Termin ist am 24.11.2026 um 14:30 Uhr. Passt das?",
        ["Der Termin ist am 24.11.2026 um 14:30 Uhr.", "Passt das?"],
    ),
    ("Wir haben am 3. Oktober geschlossen. Danke.", ["Wir haben am 3. Oktober geschlossen.", "Danke."]),
    ("Das sind 24. Danach kommt nichts.", ["Das sind 24.", "Danach kommt nichts."]),
    ("Super! Wirklich? Ja.", ["Super!", "Wirklich?", "Ja."]),
    ("Er sagte: „Gern.“ Dann ging er.", ["Er sagte: „Gern.“", "Dann ging er."]),
    ("Strom, Gas usw. gibt es bei uns. Fragen Sie!", ["Strom, Gas usw. gibt es bei uns.", "Fragen Sie!"]),
    ("Das machen wir so. Danach melden wir uns.", ["Das machen wir so.", "Danach melden wir uns."]),
    ("Hmm… Also gut.", ["Hmm…", "Also gut."]),
    ("Kein Punkt am Ende", ["Kein Punkt am Ende"]),
    ("Zahl 3,5 Prozent. Gut.", ["Zahl 3,5 Prozent.", "Gut."]),
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), TABLE)
@pytest.mark.parametrize("step", [1, 3, 1000])
def test_german_sentence_table(text: str, expected: list[str], step: int) -> None:
    assert split_streamed(text, step, first_clause_chars=1000) == expected


def test_a_long_first_clause_goes_out_at_a_comma() -> None:
    text = (
        "Vielen Dank für Ihren Anruf bei den Stadtwerken Musterstadt, wie kann ich Ihnen heute helfen? Gern."
    )
    assert split_streamed(text) == [
        "Vielen Dank für Ihren Anruf bei den Stadtwerken Musterstadt,",
        "wie kann ich Ihnen heute helfen?",
        "Gern.",
    ]


def test_only_the_first_clause_is_sent_early() -> None:
    text = (
        "Ja. Das ist eine recht lange Erklärung mit einem Komma, die trotzdem als ein Satz vorgelesen wird."
    )
    assert split_streamed(text) == ["Ja.", text[4:]]


def test_a_short_clause_waits_for_its_sentence() -> None:
    assert split_streamed("Ja, gern. Bitte.") == ["Ja, gern.", "Bitte."]


def test_a_run_on_is_cut_at_max_chars() -> None:
    text = " ".join(["Wort"] * 100)
    parts = split_streamed(text, max_chars=120)
    assert all(len(p) <= 120 for p in parts)
    assert " ".join(parts) == text


def test_sentence_is_released_as_soon_as_the_next_word_shows() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("Guten Tag.") == []
    assert splitter.push(" ") == []
    assert splitter.push("W") == ["Guten Tag."]
    assert splitter.push("ie geht's?") == []
    assert splitter.push(" ") == ["Wie geht's?"]
    assert splitter.flush() == []


def test_splitter_is_reusable_after_flush() -> None:
    splitter = SentenceSplitter()
    splitter.push("Erster Teil ohne Ende")
    assert splitter.flush() == ["Erster Teil ohne Ende"]
    assert splitter.push("Neu. Weiter") == ["Neu."]
    assert splitter.flush() == ["Weiter"]


def test_find_sentence_end_waits_for_the_next_word() -> None:
    assert find_sentence_end("Ja. ") is None
    assert find_sentence_end("Ja. ", final=True) == 3


FIRST_CLAUSE_TABLE = [
    # a comma after two words or more
    (
        "Gerne helfe ich, dafür brauche ich Ihre Kundennummer. Danke.",
        ["Gerne helfe ich,", "dafür brauche ich Ihre Kundennummer.", "Danke."],
    ),
    ("Ja, gern. Bitte.", ["Ja, gern.", "Bitte."]),
    # enough words: cut at a boundary after the fourth, never after a function word
    (
        "Ich verbinde Sie jetzt gleich mit einem Kollegen aus dem Kundendienst.",
        ["Ich verbinde Sie jetzt", "gleich mit einem Kollegen aus dem Kundendienst."],
    ),
    (
        "Ihr Termin ist mit Herrn Dr. Müller im Haus.",
        ["Ihr Termin ist mit Herrn", "Dr. Müller im Haus."],
    ),
    # German numbers, dates, times and abbreviations are never split
    (
        "Sie können z. B. online bezahlen oder überweisen.",
        ["Sie können z. B. online", "bezahlen oder überweisen."],
    ),
    ("Wir sehen uns am 24.11. um 14:30 Uhr im Büro.", ["Wir sehen uns am 24.11. um 14:30 Uhr", "im Büro."]),
    ("Das kostet ca. 1.000 Euro pro Jahr.", ["Das kostet ca. 1.000 Euro", "pro Jahr."]),
    ("Geöffnet ist ab dem 3. Mai wieder täglich.", ["Geöffnet ist ab dem 3. Mai", "wieder täglich."]),
    ("Bitte nennen Sie Nr. 4711 noch einmal.", ["Bitte nennen Sie Nr. 4711 noch einmal."]),
    # short replies stay whole
    ("Gern geschehen.", ["Gern geschehen."]),
    ("Auf Wiederhören!", ["Auf Wiederhören!"]),
]


@pytest.mark.parametrize(("text", "expected"), FIRST_CLAUSE_TABLE)
@pytest.mark.parametrize("step", [1, 3])
def test_first_clause_table(text: str, expected: list[str], step: int) -> None:
    assert split_streamed(text, step, first_clause_words=4) == expected


def test_a_whole_sentence_at_once_needs_no_clause_cut() -> None:
    text = "Gerne helfe ich, dafür brauche ich Ihre Kundennummer. Danke."
    assert SentenceSplitter(first_clause_words=4).push(text) == [text[:-7]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Um 14:30 Uhr", None),  # "Uhr" may go on: not complete yet
        ("Um 14:30 Uhr passt", None),  # nothing but digits and function words before
        ("Wir haben am 3. Mai ", None),
        ("Gerne, ", None),  # one word before the comma
        ("Gerne helfe ich, ", len("Gerne helfe ich,")),
        ("Heute haben wir leider geschlossen ", len("Heute haben wir leider")),
    ],
)
def test_first_clause_end(text: str, expected: int | None) -> None:
    assert first_clause_end(text, max_words=4) == expected
