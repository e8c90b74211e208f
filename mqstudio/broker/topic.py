"""Word-level topic matching for the topic exchange: a trie of binding patterns, never regex.

Owns: `TopicTrie` (the index a topic exchange routes with), `split_words` (how RabbitMQ cuts a key
into words) and `topic_matches`, a slow, obviously-correct reference matcher that the property tests
compare the trie against. Must not import anything outside the stdlib (no `mqstudio.core`).

Semantics follow RabbitMQ's topic exchange (`deps/rabbit/src/rabbit_db_topic_exchange.erl`,
`split_topic_key/1` and `trie_match/5`), which implement the AMQP 0-9-1 spec's topic rule
("`*` matches a single word, `#` matches zero or more words"):

* words are separated by `.`; empty words are words: `a..b` is `["a", "", "b"]`, `a.` is `["a", ""]`;
* the empty string is *no* words (`split_topic_key(<<>>) -> []`), so the key `""` is matched by the
  binding keys `""`, `#`, `#.#` … but not by `*` (which needs exactly one word);
* `#` may match zero words, so `a.#` matches `a` and `#.a` matches `a`;
* `*` matches exactly one word (possibly the empty word), so `a.*` matches `a.` but not `a.b.c`.

kombu's regex translation gets the last two wrong (see ARCHITECTURE.md), which is why we keep words.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["HASH", "STAR", "TopicTrie", "split_words", "topic_matches"]

T = TypeVar("T")

STAR = "*"
HASH = "#"


def split_words(key: str) -> list[str]:
    """Split a routing or binding key into words exactly like RabbitMQ's `split_topic_key/1`."""
    # "".split(".") is [""] (one empty word) but RabbitMQ treats the empty key as zero words.
    return key.split(".") if key else []


class _Node(Generic[T]):
    """One trie node: the pattern prefix spelled by the edges from the root down to here."""

    __slots__ = ("children", "is_hash", "needs_memo", "values")

    def __init__(self, is_hash: bool, needs_memo: bool) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.values: set[T] = set()
        # Reached through a `#` edge: this node may keep swallowing words (the `#` self-loop).
        self.is_hash = is_hash
        # Some `#` lies on the path from the root. Only then can two different ways of spending
        # words on the `#`s reach the same (node, word index) state, so only then do we memoise.
        self.needs_memo = needs_memo

    def child(self, word: str) -> _Node[T]:
        node = self.children.get(word)
        if node is None:
            is_hash = word == HASH
            node = _Node(is_hash, self.needs_memo or is_hash)
            self.children[word] = node
        return node


class TopicTrie(Generic[T]):
    """A set of (pattern, value) pairs that answers "which values does this routing key reach?".

    Matching walks the trie word by word as an NFA: state (node, i) means "the pattern prefix at
    `node` has consumed the first `i` words". A `#` node loops on itself, so every state is visited
    at most once and a key of n words costs O(nodes reached * (n + 1)), even for `#.#.#.#.a`, where
    naive backtracking is exponential.
    """

    __slots__ = ("_root", "_size")

    def __init__(self) -> None:
        self._root: _Node[T] = _Node(False, False)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def add(self, pattern: str, value: T) -> bool:
        """Add `value` under `pattern`; False (and no change) when that pair is already present."""
        node = self._root
        for word in split_words(pattern):
            node = node.child(word)
        if value in node.values:
            return False
        node.values.add(value)
        self._size += 1
        return True

    def remove(self, pattern: str, value: T) -> bool:
        """Remove the pair; False when absent. Nodes left without values or children are pruned."""
        path: list[tuple[_Node[T], str]] = []
        node = self._root
        for word in split_words(pattern):
            nxt = node.children.get(word)
            if nxt is None:
                return False
            path.append((node, word))
            node = nxt
        if value not in node.values:
            return False
        node.values.discard(value)
        self._size -= 1
        # Prune bottom-up so a long-lived exchange with churning bindings does not grow without bound
        # (RabbitMQ's `remove_path_if_empty/2` does the same for its mnesia trie).
        for parent, word in reversed(path):
            if node.values or node.children:
                break
            del parent.children[word]
            node = parent
        return True

    def match(self, routing_key: str) -> set[T]:
        """Every value whose pattern matches `routing_key` (each value once)."""
        words = split_words(routing_key)
        n = len(words)
        result: set[T] = set()
        seen: set[tuple[int, int]] = set()
        stack: list[tuple[_Node[T], int]] = [(self._root, 0)]
        pop = stack.pop
        push = stack.append
        while stack:
            node, i = pop()
            if node.needs_memo:
                state = (id(node), i)
                if state in seen:
                    continue
                seen.add(state)
            children = node.children
            if node.is_hash:
                if not children:
                    # A trailing `#` swallows whatever is left: no need to step word by word.
                    result |= node.values
                    continue
                if i < n:
                    push((node, i + 1))  # `#` consumes one more word
            hash_child = children.get(HASH)
            if hash_child is not None:
                push((hash_child, i))  # `#` starts by consuming zero words
            if i == n:
                result |= node.values
                continue
            exact = children.get(words[i])
            if exact is not None:
                push((exact, i + 1))
            star = children.get(STAR)
            if star is not None and star is not exact:
                push((star, i + 1))
        return result

    def patterns(self) -> Iterator[tuple[str, T]]:
        """All stored (pattern, value) pairs, for debugging and tests; order is unspecified."""
        stack: list[tuple[_Node[T], list[str]]] = [(self._root, [])]
        while stack:
            node, words = stack.pop()
            # A root-level value has no words: its pattern is the empty binding key "".
            for value in node.values:
                yield ".".join(words), value
            for word, child in node.children.items():
                stack.append((child, [*words, word]))


def topic_matches(pattern: str, routing_key: str) -> bool:
    """Reference matcher: plain recursion over word lists, written to be checked by eye, not fast.

    Used by the property tests as the oracle for `TopicTrie.match`; never on a routing path.
    """
    return _words_match(tuple(split_words(pattern)), tuple(split_words(routing_key)))


def _words_match(pattern: tuple[str, ...], key: tuple[str, ...]) -> bool:
    if not pattern:
        return not key
    head, rest = pattern[0], pattern[1:]
    if head == HASH:
        # `#` matches zero words, or one word and then is still available for more.
        return _words_match(rest, key) or (bool(key) and _words_match(pattern, key[1:]))
    if not key:
        return False
    if head in (STAR, key[0]):
        return _words_match(rest, key[1:])
    return False
