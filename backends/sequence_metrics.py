"""Metrics over decoded token sequences, from well-kept libraries: corpus BLEU (sacrebleu), CER and WER (jiwer).

Sequences arrive as token ids. Without a tokenizer to turn them back into text,
each id is one word (``w17``) for BLEU and WER, and one character for CER (a
private-use code point per id), so the scores are the libraries' own over the
sequences as they are. BLEU runs with sacrebleu's ``tokenize='none'``: the words
are already tokens.
"""

from __future__ import annotations

import jiwer
import sacrebleu

PRIVATE_USE = 0xF0000  # a plane of code points no text uses: one character per token id


def _words(sequence: list[int]) -> str:
    return " ".join(f"w{t}" for t in sequence)


def _characters(sequence: list[int]) -> str:
    return "".join(chr(PRIVATE_USE + t) for t in sequence)


def bleu(hypotheses: list[list[int]], references: list[list[int]]) -> float:
    """sacrebleu's corpus BLEU, 0..100."""
    return sacrebleu.corpus_bleu([_words(h) for h in hypotheses], [[_words(r) for r in references]],
                                 tokenize="none").score


def cer(hypotheses: list[list[int]], references: list[list[int]]) -> float:
    """jiwer's character error rate: edits over reference characters, summed over the corpus."""
    return jiwer.cer([_characters(r) for r in references], [_characters(h) for h in hypotheses])


def wer(hypotheses: list[list[int]], references: list[list[int]]) -> float:
    """jiwer's word error rate over the corpus."""
    return jiwer.wer([_words(r) for r in references], [_words(h) for h in hypotheses])


def sequence_accuracy(hypotheses: list[list[int]], references: list[list[int]]) -> float:
    """The fraction of sequences decoded exactly."""
    return sum(h == r for h, r in zip(hypotheses, references)) / len(references)


SEQUENCE_METRICS = {"bleu": bleu, "cer": cer, "wer": wer, "sequence_accuracy": sequence_accuracy}
"""One function per name of ``dsl.decoding.DECODE_METRICS`` (a completeness test holds them equal)."""
