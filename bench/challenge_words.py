"""How often tiny.en misses each consent challenge word, read by the synthetic talents.

    PYTHONPATH=$PWD:$PWD/platform .venv/bin/python bench/challenge_words.py [--reps 3]

Each talent reads every word of `speech.consent.CHALLENGE_WORDS` (and the digits) in
challenge-like lists ("I agree. Challenge: maple two river five ..."); a word counts as heard
when a transcript word is within the consent check's similarity (or a digit homophone). Prints
the miss rate per word, worst first. Used to curate the word list (docs/voices.md)."""

from __future__ import annotations

import argparse
import collections
import random
import time

import numpy as np

from speech import asr, consent
from speech.testing import talents as T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    words = list(consent.CHALLENGE_WORDS)
    missed, seen = collections.Counter(), collections.Counter()
    started = time.perf_counter()
    for _ in range(args.reps):
        rng.shuffle(words)
        for talent in T.TALENTS:
            for i in range(0, len(words), 4):
                group = words[i : i + 4]
                digits = rng.sample(consent.DIGIT_WORDS, len(group))
                phrase = " ".join(x for pair in zip(group, digits, strict=True) for x in pair)
                audio = np.asarray(T.render(talent, f"I agree. Challenge: {phrase}."))
                heard = asr.normalize_for_wer(asr.transcribe(audio, T.SAMPLE_RATE))
                for word in group + digits:
                    seen[word] += 1
                    if not any(
                        asr.word_similarity(word, h) >= asr.MIN_WORD_SIMILARITY
                        or asr.HOMOPHONES.get(h) == word
                        for h in heard
                    ):
                        missed[word] += 1
    print("| word | missed | readings |\n|---|---:|---:|")
    for word in sorted(seen, key=lambda w: (-missed[w] / seen[w], w)):
        print(f"| {word} | {missed[word] / seen[word]:.0%} | {seen[word]} |")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
