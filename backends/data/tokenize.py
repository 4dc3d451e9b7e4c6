"""Text to ids: the spec's ``data.tokenizer``, through Hugging Face's ``tokenizers`` library.

``char`` and ``vocab`` build a word-level vocabulary (``tokenizers``' ``WordLevel``
model and trainer) from the **training split only**, so the test split's new words
read as ``<unk>`` as they would in use: ``char`` splits text into characters (spaces
and newlines are tokens), ``vocab`` into runs of letters and digits and runs of other
symbols (the ``Whitespace`` pre-tokenizer). The trainer keeps the ``max_size`` most
frequent tokens seen ``min_freq`` times, ties in alphabetical order, after four
reserved ids: 0 ``<pad>``, 1 ``<bos>``, 2 ``<eos>``, 3 ``<unk>`` (the ids of the
``reverse`` dataset, so a model trained on one reads the other's layout). The
vocabulary is kept as ``vocab.json`` (``WordLevel``'s own ``{token: id}`` file) next
to the run's weights, and ``vocab_encoder`` rebuilds the same tokenizer from it.

``file: tokenizer.json`` loads a whole ``tokenizers`` pipeline (a BERT WordPiece
file, say): its own special tokens and post-processing, its ``[PAD]`` (or ``<pad>``)
id for padding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsl import DataError
from dsl.columns import RESERVED_IDS

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(RESERVED_IDS)
VOCAB_FILE = "vocab.json"
UNLIMITED = 2**31 - 1
PAD_TOKENS = ("[PAD]", "<pad>")
BOUNDS = (("<bos>", "<eos>"), ("<s>", "</s>"), ("[CLS]", "[SEP]"))
"""A tokenizers file's start and end tokens for translation targets, the first pair it has."""


@dataclass(frozen=True)
class Encoded:
    """Texts as rows of ``length`` ids, right-padded; ``mask`` is 1 on a real token, ``types`` the segment ids."""

    ids: np.ndarray
    mask: np.ndarray
    types: np.ndarray


@dataclass
class Encoder:
    """A ``tokenizers.Tokenizer`` and the ids dslc adds around its tokens; ``files`` go next to the weights."""

    tokenizer: object
    pad: int
    files: dict[str, bytes]
    specials: bool  # whether encoding adds the tokenizer's own special tokens (a file's [CLS] ... [SEP])

    def encode(self, texts: list[str], length: int, specials: bool | None = None) -> Encoded:
        """``texts`` cut to ``length`` tokens (keeping the tokenizer's special tokens) and padded to it."""
        self.tokenizer.enable_truncation(max_length=length)
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=self.specials if specials is None
                                                else specials)
        ids = np.full((len(texts), length), self.pad, np.int64)
        types = np.zeros((len(texts), length), np.int64)
        lengths = np.array([len(e.ids) for e in encodings], np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, :lengths[row]] = encoding.ids
            types[row, :lengths[row]] = encoding.type_ids
        return Encoded(ids, (np.arange(length) < lengths[:, None]).astype(np.int64), types)

    def bounds(self, where: str) -> tuple[int, int]:
        """The start and end ids of a translation target: dslc's ``<bos>``/``<eos>``, or a file's first pair."""
        for start, end in BOUNDS:
            ids = self.tokenizer.token_to_id(start), self.tokenizer.token_to_id(end)
            if None not in ids:
                return ids
        pairs = ", ".join(f"{a} {b}" for a, b in BOUNDS)
        raise DataError(f"{where} has no start and end tokens for translation targets; it needs one of the pairs "
                        f"{pairs}")


def build_encoder(tokenizer, train_texts: list[str], max_size: int | None) -> Encoder:
    """The spec's tokenizer (a ``ChoiceSpec``): a vocabulary of ``train_texts``, or a tokenizers file.

    ``max_size`` is the room the embedding reading the ids leaves after the reserved ids
    (None: no table reads them directly); a smaller ``max_size`` in the spec wins.
    """
    if tokenizer.name == "file":
        return file_encoder(Path(tokenizer.params.path))
    from tokenizers import trainers

    params = tokenizer.params
    limits = [s for s in (params.max_size, max_size) if s is not None]
    model = _word_level(tokenizer.name, None)
    trainer = trainers.WordLevelTrainer(vocab_size=min(limits) + RESERVED_IDS if limits else UNLIMITED,
                                        min_frequency=params.min_freq, special_tokens=list(SPECIALS),
                                        show_progress=False)
    model.train_from_iterator(train_texts, trainer)
    return _vocab_encoder(model)


def vocab_encoder(level: str, path: Path) -> Encoder:
    """The tokenizer a run built, from the ``vocab.json`` saved beside its weights (``dslc predict``)."""
    try:
        vocab = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read the run's vocabulary ({err}); it is written next to the weights by "
                        f"dslc train") from None
    return _vocab_encoder(_word_level(level, vocab))


def file_encoder(path: Path) -> Encoder:
    from tokenizers import Tokenizer

    if not path.is_file():
        raise DataError(f"tokenizer file {path}: no such file; give the path of a Hugging Face tokenizers file "
                        f"(tokenizer.json), relative to the working directory")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises a bare Exception for a malformed file
        raise DataError(f"tokenizer file {path} is not a Hugging Face tokenizers file ({one_line(err)})") from None
    tokenizer.no_padding()
    pad = next((i for i in map(tokenizer.token_to_id, PAD_TOKENS) if i is not None), 0)
    return Encoder(tokenizer, pad, {}, specials=True)


def _word_level(level: str, vocab: dict[str, int] | None):
    """An untrained (or ``vocab``'s) word-level tokenizer splitting text into characters or words."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=SPECIALS[UNK]))
    tokenizer.pre_tokenizer = (pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated") if level == "char"
                               else pre_tokenizers.Whitespace())
    return tokenizer


def _vocab_encoder(tokenizer) -> Encoder:
    vocab = dict(sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]))
    data = (json.dumps(vocab, ensure_ascii=False, indent=0) + "\n").encode("utf-8")
    return Encoder(tokenizer, PAD, {VOCAB_FILE: data}, specials=False)


def one_line(err: Exception) -> str:
    return " ".join(str(err).split())
