"""The German end-of-turn judge on a table of fragments: what it calls complete, open or unsure, and why."""

from __future__ import annotations

import pytest

from media.endpointing import Completion, JudgeConfig, judge_turn
from media.german_words import digits_of, number_value, ordinal_value

C, OPEN, U = Completion.COMPLETE, Completion.INCOMPLETE, Completion.UNSURE

FRAGMENTS = [
    # closed classes at the end: the sentence is open
    ("Ich rufe an wegen", OPEN, "preposition 'wegen'"),
    ("Ich möchte mit", OPEN, "preposition 'mit'"),
    ("Ich habe eine Frage zu", OPEN, "preposition 'zu'"),
    ("Können Sie mir sagen, ob", OPEN, "conjunction 'ob'"),
    ("Es ist so, dass", OPEN, "conjunction 'dass'"),
    ("Die Rechnung ist zu hoch, weil", OPEN, "conjunction 'weil'"),
    ("Ich ziehe um und", OPEN, "conjunction 'und'"),
    ("Ich wollte fragen, wann", OPEN, "'wann'"),
    ("Es geht um die", OPEN, "article 'die'"),
    ("Ich brauche eine", OPEN, "article 'eine'"),
    ("Ähm", OPEN, "filler 'ähm'"),
    ("Also", OPEN, "filler 'also'"),
    ("Ja, äh", OPEN, "filler 'äh'"),
    ("Die Vertragsnummer ist", OPEN, "verb 'ist'"),
    ("Die Zählernummer lautet", OPEN, "verb 'lautet'"),
    ("Ich hätte gern", OPEN, "needs an object"),
    ("Es geht um Folgendes, und zwar", OPEN, "announces more"),
    # open dictations: numbers counted in digits, German number words included
    ("Meine IBAN ist DE89 3704 0044", OPEN, "10 of 20 digits"),
    ("Meine Telefonnummer ist null eins sieben eins", OPEN, "phone number dictation: 4 digits"),
    ("Die Vertragsnummer ist zwölf dreiundvierzig", OPEN, "contract number dictation: 4 digits"),
    ("Meine Kundennummer ist vier fünf sechs", OPEN, "customer number dictation: 3 digits"),
    ("Die Vertragsnummer ist zwölf dreiundvierzig fünfundsechzig", U, "6 digits, length unknown"),
    ("Der Zählerstand ist vier fünf sechs", U, "meter reading dictation of 3 digits"),
    ("Mein Geburtsdatum ist der dritte vierte", OPEN, "without year"),
    ("Ich bin am zwölften", U, "without month"),
    # complete
    ("Ja.", C, "one-word answer"),
    ("Genau", C, "one-word answer"),
    ("Nein, danke.", C, "short answer"),
    ("Wann haben Sie geöffnet?", C, "question mark"),
    ("Und wann", C, "short question"),
    ("Ich möchte meinen Zählerstand durchgeben.", Completion.STATEMENT, "statement, a question may follow"),
    ("Ich wollte fragen, ob ich meinen Abschlag senken kann.", C, "verb-final clause"),
    ("Meine IBAN ist DE89 3704 0044 0532 0130 00", C, "20 digits"),
    ("Ich bin am zwölften März", C, "month 'märz'"),
    ("Bitte schicken Sie mir die Rechnung zu.", C, "verb particle 'zu'"),
    ("Mein Strom ist weg.", C, "verb particle 'weg'"),
    ("Ja, das kann sein.", Completion.STATEMENT, "statement, a question may follow"),
    ("Halt!", C, "no open ending"),
    ("Das ist alles, was ich habe.", C, "verb-final clause"),
    ("Ich melde mich ab.", C, "verb particle 'ab'"),
    ("Auf Wiederhören", C, "no open ending"),
    ("Seit wann", C, "short question"),
    # neither
    ("Ich rufe an", U, "verb particle"),
    ("Hallo, guten Tag.", U, "greeting"),
    ("", U, "no words"),
]


@pytest.mark.parametrize(("text", "kind", "reason"), FRAGMENTS)
def test_judge_on_german_fragments(text: str, kind: Completion, reason: str) -> None:
    verdict = judge_turn(text)
    assert verdict.kind is kind, verdict
    assert reason in verdict.reason


def test_a_known_number_length_closes_the_dictation() -> None:
    config = JudgeConfig(number_digits={"kundennummer": 8})
    assert judge_turn("Meine Kundennummer ist vier sieben eins eins", config).kind is OPEN
    done = judge_turn("Meine Kundennummer ist vier sieben eins eins null acht drei zwei", config)
    assert done.kind is C
    assert done.reason == "customer number complete: 8 digits"


@pytest.mark.parametrize(
    ("word", "value", "digits"),
    [
        ("dreiundvierzig", 43, 2),
        ("null", 0, 1),
        ("zwölf", 12, 2),
        ("zweihundertfünfzig", 250, 3),
        ("neunzehnhundertachtzig", 1980, 4),
        ("zweitausendvierundzwanzig", 2024, 4),
        ("4711", 4711, 4),
        ("Rechnung", None, None),
        ("ein", None, None),
    ],
)
def test_german_number_words(word: str, value: int | None, digits: int | None) -> None:
    assert number_value(word) == value
    assert digits_of(word) == digits


@pytest.mark.parametrize(
    ("word", "value"),
    [("zwölften", 12), ("ersten", 1), ("dritte", 3), ("einunddreißigsten", 31), ("Monaten", None)],
)
def test_german_ordinals(word: str, value: int | None) -> None:
    assert ordinal_value(word) == value
