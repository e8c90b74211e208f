"""Topic matching: RabbitMQ's word rules, the trie against a reference matcher, pruning, no blow-up."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from mqstudio.broker.topic import TopicTrie, split_words, topic_matches

# RabbitMQ tutorial 5 ("Topics"): Q1 is bound with *.orange.*, Q2 with *.*.rabbit and lazy.#.
TUTORIAL_BINDINGS = [("*.orange.*", "Q1"), ("*.*.rabbit", "Q2"), ("lazy.#", "Q2")]
TUTORIAL_CASES = [
    ("quick.orange.rabbit", {"Q1", "Q2"}),
    ("lazy.orange.elephant", {"Q1", "Q2"}),
    ("quick.orange.fox", {"Q1"}),
    ("lazy.brown.fox", {"Q2"}),
    ("lazy.pink.rabbit", {"Q2"}),  # matches two of Q2's bindings, delivered once
    ("quick.brown.fox", set()),
    ("orange", set()),
    ("quick.orange.new.rabbit", set()),
    ("lazy.orange.new.rabbit", {"Q2"}),
]


@pytest.mark.parametrize(("routing_key", "expected"), TUTORIAL_CASES)
def test_tutorial_five_routing(routing_key: str, expected: set[str]) -> None:
    trie: TopicTrie[str] = TopicTrie()
    for pattern, queue in TUTORIAL_BINDINGS:
        trie.add(pattern, queue)
    assert trie.match(routing_key) == expected


# (pattern, routing key, matches?) — RabbitMQ semantics, see the topic.py docstring for sources.
EDGE_CASES = [
    ("a.#", "a", True),  # `#` matches zero words (kombu's regex gets this wrong)
    ("a.*", "a.b.c", False),  # `*` is exactly one word (kombu's regex gets this wrong)
    ("a.*", "a.b", True),
    ("a.*", "a", False),
    ("#", "", True),  # the empty key is zero words
    ("#", "a.b.c", True),
    ("*", "", False),  # ... so `*` needs a word it does not have
    ("", "", True),
    ("", "a", False),
    ("a", "", False),
    ("*", ".", False),  # "." is two empty words
    ("*.*", ".", True),
    ("a.*", "a.", True),  # the empty word is a word
    ("a", "a.", False),
    ("a.#", "a.", True),
    ("a.*.b", "a..b", True),
    ("a..b", "a..b", True),
    ("a.b", "a..b", False),
    ("#.a", "a", True),
    ("#.a", "b.a", True),
    ("#.a", "a.b", False),
    ("#.#", "", True),
    ("#.#", "a.b", True),
    ("#.#.#", "a", True),
    ("a.#.b", "a.b", True),
    ("a.#.b", "a.x.y.b", True),
    ("a.#.b", "a.x.y.c", False),
    ("#.a.#", "a", True),
    ("#.a.#", "b.b", False),
    ("*.#", "", False),
    ("*.#", "a", True),
    ("#.*", "", False),
    ("#.*", "a.b.c", True),
    ("#.#.#.#.a", "b.b.b.b.b.b.b.b.a", True),
    ("#.#.#.#.a", "b.b.b.b.b.b.b.b.c", False),
    ("*", "*", True),  # routing-key words are literal text
    ("a", "*", False),
    ("#", "#", True),
    ("a.b.c", "a.b.c", True),
    ("a.b.c", "a.b", False),
    ("a.b", "a.b.c", False),
]


@pytest.mark.parametrize(("pattern", "routing_key", "expected"), EDGE_CASES)
def test_trie_follows_rabbitmq_word_rules(pattern: str, routing_key: str, expected: bool) -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add(pattern, "q")
    assert (trie.match(routing_key) == {"q"}) is expected


@pytest.mark.parametrize(("pattern", "routing_key", "expected"), EDGE_CASES)
def test_reference_matcher_follows_rabbitmq_word_rules(
    pattern: str, routing_key: str, expected: bool
) -> None:
    assert topic_matches(pattern, routing_key) is expected


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("", []),
        ("a", ["a"]),
        ("a.b", ["a", "b"]),
        ("a..b", ["a", "", "b"]),
        (".", ["", ""]),
        ("a.", ["a", ""]),
    ],
)
def test_split_words_like_split_topic_key(key: str, words: list[str]) -> None:
    assert split_words(key) == words


def test_add_is_idempotent_and_len_counts_pairs() -> None:
    trie: TopicTrie[str] = TopicTrie()
    assert trie.add("a.*", "q1") is True
    assert trie.add("a.*", "q1") is False
    assert trie.add("a.*", "q2") is True
    assert trie.add("a.#", "q1") is True
    assert len(trie) == 3
    assert trie.match("a.b") == {"q1", "q2"}


def test_remove_reports_absent_pairs() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("a.b", "q1")
    assert trie.remove("a.b", "q2") is False
    assert trie.remove("a.c", "q1") is False
    assert trie.remove("a", "q1") is False  # a prefix node exists but holds no value
    assert trie.remove("a.b", "q1") is True
    assert trie.remove("a.b", "q1") is False
    assert len(trie) == 0
    assert not trie


def test_remove_prunes_empty_nodes_but_keeps_shared_prefixes() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("a.b.c.d", "q1")
    trie.add("a.b", "q2")
    trie.remove("a.b.c.d", "q1")
    assert list(trie._root.children) == ["a"]
    assert list(trie._root.children["a"].children["b"].children) == []
    trie.remove("a.b", "q2")
    assert trie._root.children == {}
    assert trie.match("a.b") == set()


def test_removed_pattern_no_longer_matches_but_others_do() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("a.#", "q1")
    trie.add("a.*", "q2")
    trie.remove("a.#", "q1")
    assert trie.match("a.b") == {"q2"}
    assert trie.match("a") == set()


def test_patterns_lists_every_pair() -> None:
    trie: TopicTrie[str] = TopicTrie()
    pairs = {("", "q0"), ("#", "q1"), ("a.*.#", "q2"), ("a..b", "q3")}
    for pattern, value in pairs:
        trie.add(pattern, value)
    assert set(trie.patterns()) == pairs


@pytest.mark.timeout(20)
def test_many_hashes_do_not_blow_up() -> None:
    # Backtracking over 12 `#`s and 60 words explores ~C(72, 12) splits; the memoised walk visits
    # at most nodes * (words + 1) states. A regression shows up as a hang caught by the timeout.
    trie: TopicTrie[str] = TopicTrie()
    trie.add(".".join(["#"] * 12 + ["a"]), "deep")
    trie.add(".".join(["#", "*"] * 6 + ["z"]), "mixed")
    key_miss = ".".join(["b"] * 60 + ["c"])
    key_hit = ".".join(["b"] * 60 + ["a"])
    assert trie.match(key_miss) == set()
    assert trie.match(key_hit) == {"deep"}


# -- property tests against the reference matcher -----------------------------------------------

KEY_WORDS = st.sampled_from(["a", "b", "c", ""])
PATTERN_WORDS = st.sampled_from(["a", "b", "c", "", "*", "#"])
keys = st.lists(KEY_WORDS, max_size=6).map(".".join)
patterns = st.lists(PATTERN_WORDS, max_size=6).map(".".join)


@settings(max_examples=400)
@given(pattern_list=st.lists(patterns, max_size=12), routing_keys=st.lists(keys, min_size=1, max_size=5))
def test_trie_agrees_with_reference_matcher(pattern_list: list[str], routing_keys: list[str]) -> None:
    trie: TopicTrie[str] = TopicTrie()
    for pattern in pattern_list:
        trie.add(pattern, pattern)
    for key in routing_keys:
        assert trie.match(key) == {p for p in pattern_list if topic_matches(p, key)}


@given(pattern_list=st.lists(patterns, max_size=12), data=st.data())
def test_removing_everything_leaves_an_empty_trie(pattern_list: list[str], data: st.DataObject) -> None:
    trie: TopicTrie[str] = TopicTrie()
    for pattern in pattern_list:
        trie.add(pattern, pattern)
    for pattern in data.draw(st.permutations(sorted(set(pattern_list)))):
        assert trie.remove(pattern, pattern) is True
    assert len(trie) == 0
    assert trie._root.children == {}
    assert trie._root.values == set()


class TrieModel(RuleBasedStateMachine):
    """Interleaved add/remove/match against a plain set of (pattern, value) pairs."""

    values = Bundle("values")

    def __init__(self) -> None:
        super().__init__()
        self.trie: TopicTrie[str] = TopicTrie()
        self.model: set[tuple[str, str]] = set()

    @rule(target=values, value=st.sampled_from(["q1", "q2", "q3"]))
    def make_value(self, value: str) -> str:
        return value

    @rule(pattern=patterns, value=values)
    def add(self, pattern: str, value: str) -> None:
        assert self.trie.add(pattern, value) is ((pattern, value) not in self.model)
        self.model.add((pattern, value))

    @rule(pattern=patterns, value=values)
    def remove(self, pattern: str, value: str) -> None:
        assert self.trie.remove(pattern, value) is ((pattern, value) in self.model)
        self.model.discard((pattern, value))

    @rule(key=keys)
    def match(self, key: str) -> None:
        assert self.trie.match(key) == {v for p, v in self.model if topic_matches(p, key)}

    @invariant()
    def sizes_agree(self) -> None:
        assert len(self.trie) == len(self.model)
        assert set(self.trie.patterns()) == self.model


TestTrieModel = TrieModel.TestCase
