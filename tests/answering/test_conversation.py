"""Follow-up resolution: what a question means given the earlier turns, and what is left alone."""
from __future__ import annotations

import pytest

from qa.answering.conversation import film_in_focus, resolve_question
from qa.retrieval.titles import find_film, normalize_title

pytestmark = pytest.mark.unit

TITLES = ["Alien", "Amélie", "Casablanca", "Fargo", "Jaws", "Leaving Las Vegas", "Mad Max: Fury Road",
          "No Country for Old Men", "The Godfather", "The Silence of the Lambs"]
LLV = [{"question": "who directed Leaving Las Vegas?", "answer": "Mike Figgis", "film": "Leaving Las Vegas"}]


def resolve(question, history=(), filters=None, **kw):
    return resolve_question(question, list(history), TITLES, filters, **kw)


@pytest.mark.parametrize("question, understood", [
    ("who plays Sera in it?", "who plays Sera in Leaving Las Vegas?"),
    ("when was it released?", "when was Leaving Las Vegas released?"),
    ("who wrote the film?", "who wrote Leaving Las Vegas?"),
    ("Where is that movie set?", "Where is Leaving Las Vegas set?"),
    ("what is this picture about?", "what is Leaving Las Vegas about?"),
    ("who composed its score?", "who composed Leaving Las Vegas's score?"),
    ("who plays Sera?", "who plays Sera in Leaving Las Vegas?"),          # elided subject
    ("and the cinematographer", "and the cinematographer in Leaving Las Vegas?"),
])
def test_a_follow_up_is_about_the_film_in_focus(question, understood):
    resolved = resolve(question, LLV)
    assert resolved.question == understood
    assert resolved.film == "Leaving Las Vegas"
    assert resolved.filters == {"film": "Leaving Las Vegas"}


def test_the_film_in_focus_comes_from_a_title_in_an_earlier_question_or_answer():
    assert resolve("when was it released?", [{"question": "who directed Leaving Las Vegas?"}]).film == \
        "Leaving Las Vegas"
    assert resolve("who directed it?", [{"question": "which film has a shark?", "answer": "Jaws"}]).film == "Jaws"


def test_the_film_carries_over_several_turns_until_another_is_named():
    history = [*LLV, {"question": "who plays Sera?", "answer": "Elisabeth Shue"}]
    assert resolve("when was it released?", history).film == "Leaving Las Vegas"
    history.append({"question": "who directed Fargo?", "answer": "Joel Coen"})
    assert resolve("when was it released?", history).question == "when was Fargo released?"


def test_a_film_named_in_the_question_wins_and_is_not_rewritten():
    resolved = resolve("who directed the godfather?", LLV)
    assert resolved.question == "who directed the godfather?"
    assert resolved.film == "The Godfather" and resolved.filters == {"film": "The Godfather"}


def test_and_another_film_repeats_the_last_full_question():
    assert resolve("and The Godfather?", LLV).question == "who directed The Godfather?"
    history = [*LLV, {"question": "and Jaws?", "answer": "Steven Spielberg", "film": "Jaws"}]
    resolved = resolve("what about fargo", history)
    assert resolved.question == "who directed Fargo?" and resolved.film == "Fargo"
    # the earlier question referred to its film by pronoun: the new title takes its place
    assert resolve("how about Alien?", [{"question": "when was it released?", "film": "Jaws"}]).question == \
        "when was Alien released?"


def test_a_chosen_film_filter_is_the_film_in_focus_and_is_kept():
    resolved = resolve("when was it released?", LLV, filters={"film": "Jaws"})
    assert resolved.question == "when was Jaws released?"
    assert resolved.film == "Jaws" and resolved.filters == {"film": "Jaws"}
    # a list of films is a filter, not a focus: the question stays as typed
    resolved = resolve("who plays Quint?", filters={"film": ["Jaws", "Fargo"]})
    assert resolved.question == "who plays Quint?" and resolved.filters == {"film": ["Jaws", "Fargo"]}


@pytest.mark.parametrize("history", [[], [{"question": "what makes a good thriller?", "answer": "suspense"}]])
def test_nothing_is_resolved_without_a_film_in_focus(history):
    resolved = resolve("when was it released?", history)
    assert resolved == resolved.__class__(question="when was it released?", film=None, filters=None)


def test_only_the_first_reference_is_replaced_and_words_containing_it_are_left_alone():
    assert resolve("is it worth it?", LLV).question == "is Leaving Las Vegas worth it?"
    assert resolve("who is the one with the little dog?", LLV).question == \
        "who is the one with the little dog in Leaving Las Vegas?"
    assert resolve("what is italy like in it?", LLV).question == "what is italy like in Leaving Las Vegas?"


def test_locate_finds_the_film_of_a_turn_that_names_none():
    history = [{"question": "who plays Marge Gunderson?", "answer": "Frances McDormand"}]
    seen = []

    def locate(text):
        seen.append(text)
        return "Fargo"

    resolved = resolve("who directed it?", history, locate=locate)
    assert resolved.question == "who directed Fargo?" and resolved.filters == {"film": "Fargo"}
    assert seen == ["who plays Marge Gunderson? Frances McDormand"]
    # an unknown title from locate is ignored; without locate nothing is guessed
    assert resolve("who directed it?", history, locate=lambda text: "Citizen Kane").film is None
    assert resolve("who directed it?", history).film is None


def test_titles_are_matched_forgivingly():
    assert find_film("who plays ripley in ALIEN?!", TITLES) == "Alien"
    assert find_film("who directed amelie", TITLES) == "Amélie"
    assert find_film("silence of the lambs: who is clarice?", TITLES) == "The Silence of the Lambs"
    assert find_film("mad max fury road cast", TITLES) == "Mad Max: Fury Road"
    assert find_film("no country for old men", TITLES) == "No Country for Old Men"
    assert normalize_title("The Silence of the Lambs") == "silence of the lambs"


@pytest.mark.parametrize("text", ["jawsome scenes", "an alienated hero", "the godfathers of cinema", "who?"])
def test_titles_are_whole_words_only(text):
    assert find_film(text, TITLES) is None


def test_film_in_focus_prefers_the_newest_turn():
    history = [{"question": "who directed Jaws?"}, {"question": "who plays Ripley?", "film": "Alien"}]
    assert film_in_focus(history, TITLES) == "Alien"
    assert film_in_focus([{"question": "q", "film": "not a known film"}], TITLES) is None
