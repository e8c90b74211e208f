"""Topic routing speed: mqstudio's word trie against a regex-per-binding baseline, in one run.

Run: `python benchmarks/bench_topic.py [--quick]`. Builds 1,000 and 10,000 topic bindings with a mix
of literal words, `*` and `#` (leading, middle and trailing), then routes routing keys that are all
different (a counter word in each, so nothing can be cached between lookups) and reports matches/s.

The baseline compiles every binding key to a regex the way kombu's in-memory topic exchange does
(`*` -> `[^.]+`, `#` -> `.*?`, anchored) and tests every compiled regex for every key. kombu's
regexes do not implement RabbitMQ's rules (`a.#` misses `a`), so only the speed is compared; the
trie's answers are checked against `topic_matches`, the reference matcher, on a sample of keys.
Goal: the trie is at least 100x faster at 10,000 bindings. Always exits 0: this reports, CI decides.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mqstudio.broker.topic import TopicTrie, topic_matches

GOAL_RATIO = 100.0
GOAL_AT = 10_000


def make_patterns(count: int) -> list[str]:
    """Binding keys of the shapes real topologies use, each bound to its own queue."""
    shapes = [
        "region.r{i}.*.orders.#",
        "*.service{i}.events",
        "app{i}.logs.#.error",
        "tenant.t{i}.user.*.created",
        "#.audit{i}",
        "metrics.host{i}.cpu",
        "billing.invoice{i}.#",
        "*.*.alert{i}",
    ]
    return [shapes[i % len(shapes)].format(i=i) for i in range(count)]


def make_keys(count: int, bindings: int, seed: int) -> list[str]:
    """Routing keys, unique per lookup (word `k{n}`); most of them reach one binding, some none.

    Key shape j targets binding shape j, so its number `r` is picked among the bindings of shape j.
    """
    rng = random.Random(seed)
    shapes = [
        "region.r{r}.eu.orders.created.k{n}",
        "k{n}.service{r}.events",
        "app{r}.logs.k{n}.db.error",
        "tenant.t{r}.user.k{n}.created",
        "k{n}.x.audit{r}",
        "metrics.host{r}.cpu.k{n}",  # never matches: the binding is literal and shorter
        "billing.invoice{r}.k{n}",
        "k{n}.eu.alert{r}",
        "unrelated.k{n}.traffic.{r}",
    ]
    keys = []
    for n in range(count):
        j = rng.randrange(len(shapes))
        r = rng.randrange(bindings // 8) * 8 + j % 8
        keys.append(shapes[j].format(r=r, n=n))
    return keys


def kombu_style_regex(pattern: str) -> re.Pattern[str]:
    # As kombu.transport.virtual.exchange.TopicExchange.key_to_pattern: escape, then widen wildcards.
    return re.compile("^" + re.escape(pattern).replace(r"\*", r"[^.]+").replace(r"\#", r".*?") + "$")


def build_trie(patterns: list[str]) -> Callable[[str], set[str]]:
    trie: TopicTrie[str] = TopicTrie()
    for i, pattern in enumerate(patterns):
        trie.add(pattern, f"q{i}")
    return trie.match


def build_regex(patterns: list[str]) -> Callable[[str], set[str]]:
    compiled = [(kombu_style_regex(p), f"q{i}") for i, p in enumerate(patterns)]

    def match(key: str) -> set[str]:
        return {queue for regex, queue in compiled if regex.match(key)}

    return match


def rate(match: Callable[[str], set[str]], keys: list[str], seconds: float) -> tuple[float, int]:
    """Lookups per second over at least `seconds` (or all keys), and how many lookups were made."""
    done = 0
    batch = 16
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds and done < len(keys):
        for key in keys[done : done + batch]:
            match(key)
        done = min(done + batch, len(keys))
        batch = min(batch * 2, 4096)
        elapsed = time.perf_counter() - start
    return done / elapsed, done


def check_against_reference(patterns: list[str], keys: list[str]) -> None:
    match = build_trie(patterns)
    for key in keys:
        expected = {f"q{i}" for i, p in enumerate(patterns) if topic_matches(p, key)}
        if match(key) != expected:
            raise SystemExit(f"trie disagrees with the reference matcher on {key!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 0.2 s per measurement)")
    args = parser.parse_args(argv)
    seconds = 0.2 if args.quick else 1.0

    print(f"topic routing, {seconds:g} s per measurement, unique routing key per lookup")
    print(f"{'bindings':>9} {'trie matches/s':>15} {'regex matches/s':>16} {'ratio':>8}  {'hits/key':>8}")
    ratios: dict[int, float] = {}
    for count in (1_000, 10_000):
        patterns = make_patterns(count)
        check_against_reference(patterns, make_keys(20, count, seed=count + 1))
        trie_match = build_trie(patterns)
        regex_match = build_regex(patterns)
        trie_keys = make_keys(int(400_000 * seconds), count, seed=count)
        regex_keys = make_keys(int(40_000 * seconds), count, seed=count + 2)
        hits = sum(len(trie_match(k)) for k in trie_keys[:2000]) / 2000
        trie_rate, _ = rate(trie_match, trie_keys, seconds)
        regex_rate, _ = rate(regex_match, regex_keys, seconds)
        ratios[count] = trie_rate / regex_rate
        print(f"{count:>9,} {trie_rate:>15,.0f} {regex_rate:>16,.0f} {ratios[count]:>7.0f}x  {hits:>8.2f}")

    verdict = "met" if ratios[GOAL_AT] >= GOAL_RATIO else "NOT met"
    print(
        f"goal: trie >= {GOAL_RATIO:.0f}x regex at {GOAL_AT:,} bindings -> {verdict} ({ratios[GOAL_AT]:.0f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
