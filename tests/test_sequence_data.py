"""Sequence datasets: the seeded tasks, text files and their tokenizers, and ``data.columns``.

Every file a test reads is written by the test; nothing is downloaded (AG News's
download is replaced by one that fails, as offline).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jiwer
import numpy as np
import pytest

import dsl
from backends.data import load_dataset, speech, text_files
from backends.data.sequences import IGNORE

CLASSIFIER = """\
name: t
inputs:
  {ids}: {{shape: [{length}], dtype: int64}}
  attention_mask: {{shape: [{length}], dtype: bool}}
model:
  - embedding: {{num_embeddings: {table}, embedding_dim: 4, inputs: [{ids}]}}
  - flatten
  - linear: {{out_features: {classes}, name: {label}}}
data: {data}
train: {{loss: cross_entropy, optimizer: adam}}
"""


def classifier(data: str, length: int = 12, table: int = 40, classes: int = 3, ids: str = "input_ids",
               label: str = "label") -> tuple[dsl.Spec, dsl.Graph]:
    return dsl.loads(CLASSIFIER.format(data=data, length=length, table=table, classes=classes, ids=ids, label=label))


REVERSE = """\
name: t
inputs:
  source: {shape: [6], dtype: int64}
  target_in: {shape: [8], dtype: int64}
model:
  - embedding: {num_embeddings: 20, embedding_dim: 4, inputs: [source], name: s}
  - embedding: {num_embeddings: 20, embedding_dim: 4, inputs: [target_in], name: t}
outputs: [s, t]
data: {dataset: reverse, train_size: 50, test_size: 10}
"""

SPEECH = """\
name: t
input: {shape: [40, 8]}
model: [{linear: {out_features: 6}}]
data: {dataset: synthetic_speech, columns: {frames: input, transcript: linear_1}, train_size: 40, test_size: 8}
"""


def planted(seed: int, **kw) -> dict[str, dict[str, np.ndarray]]:
    spec, graph = classifier("{dataset: planted_tokens, train_size: 64, test_size: 32}", **kw)
    data = load_dataset(spec, graph, seed=seed)
    return {"train": data.train.columns, "test": data.test.columns}


def seeded(text: str, seed: int) -> dict[str, dict[str, np.ndarray]]:
    data = load_dataset(*dsl.loads(text), seed=seed)
    return {"train": data.train.columns, "test": data.test.columns}


@pytest.mark.parametrize("text", [CLASSIFIER.format(data="{dataset: planted_tokens, train_size: 64, test_size: 32}",
                                                    length=12, table=40, classes=3, ids="input_ids", label="label"),
                                  REVERSE, SPEECH], ids=["planted_tokens", "reverse", "synthetic_speech"])
def test_seeded_tasks_are_a_function_of_the_seed_with_one_fixed_test_split(text):
    a, b, c = seeded(text, 1), seeded(text, 1), seeded(text, 2)
    assert all(np.array_equal(a["train"][k], b["train"][k]) for k in a["train"])
    assert all(not np.array_equal(a["train"][k], c["train"][k]) for k in a["train"] if a["train"][k].any())
    assert all(np.array_equal(a["test"][k], c["test"][k]) for k in a["test"])  # eval scores every run alike


def test_planted_tokens_shapes_masks_and_a_recoverable_label():
    columns = planted(0, length=12, table=40, classes=3)["train"]
    ids, mask, label = columns["input_ids"], columns["attention_mask"], columns["label"]
    assert (ids.dtype, ids.shape, mask.dtype, label.dtype, label.shape) == (np.int64, (64, 12), bool, np.int64, (64,))
    assert columns["token_type_ids"].shape == (64, 12) and not columns["token_type_ids"].any()
    assert np.array_equal(mask, ids != 0)  # padding is 0 and nothing else is
    assert np.array_equal(mask, np.sort(mask, axis=1)[:, ::-1])  # right-padded
    assert mask.sum(1).min() >= 2 and ids.max() < 40 and (ids[:, 0] == 1).all()
    planted_ids = (ids >= 2) & (ids <= 4)  # the class tokens of 3 classes: 2, 3, 4
    assert (planted_ids.sum(1) == 1).all()
    assert np.array_equal(ids[planted_ids] - 2, label)
    assert set(np.unique(label)) == {0, 1, 2}


def test_reverse_teacher_forcing_columns():
    columns = seeded(REVERSE, 3)["train"]
    source, target_in, target_out = columns["source"], columns["target_in"], columns["target_out"]
    lengths = columns["source_mask"].sum(1)
    assert source.shape == (50, 6) and target_in.shape == target_out.shape == (50, 8)
    assert np.array_equal(columns["source_mask"], source != 0) and lengths.min() >= 1
    assert np.array_equal(columns["target_mask"].sum(1), lengths + 1) and (target_in[:, 0] == 1).all()
    for row, n in enumerate(lengths):
        assert target_out[row, :n].tolist() == source[row, :n][::-1].tolist()
        assert target_out[row, n] == 2 and (target_out[row, n + 1:] == IGNORE).all()
        assert target_in[row, 1:n + 1].tolist() == target_out[row, :n].tolist()
    assert source.max() < 20 and source[source > 0].min() >= 3


def test_synthetic_speech_frames_transcribe_by_their_nearest_pattern():
    """The characters are recoverable from the frames (nearest pattern, collapsed): a CTC model can learn it."""
    columns = seeded(SPEECH, 0)["train"]
    frames, transcript, lengths = (columns[k] for k in ("input", "linear_1", "frame_lengths"))
    assert (frames.dtype, frames.shape, transcript.shape) == (np.float32, (40, 40, 8), (40, 6))
    assert transcript.max() == 5 and transcript.min() == 0  # 5 characters: the output's 6 classes less the blank
    patterns = np.random.default_rng(speech.PATTERN_SEED).standard_normal((6, 8)).astype(np.float32)
    patterns[0] = 0
    said, heard = [], []
    for row, n in enumerate(lengths):
        assert not frames[row, n:].any() and frames[row, :n].any()
        nearest = ((frames[row, :n, None, :] - patterns) ** 2).sum(-1).argmin(-1)
        heard.append("".join(chr(96 + c) for i, c in enumerate(nearest) if c and (i == 0 or c != nearest[i - 1])))
        said.append("".join(chr(96 + c) for c in transcript[row] if c))
    assert jiwer.cer(said, heard) == 1 / 32  # frame by frame, without context; a BiLSTM does better


def test_data_columns_map_dataset_columns_to_inputs_and_outputs():
    spec, graph = classifier("{dataset: planted_tokens, columns: {input_ids: tokens, label: topic}, train_size: 8, "
                             "test_size: 4}", ids="tokens", label="topic")
    columns = load_dataset(spec, graph).train.columns
    assert set(columns) == {"tokens", "attention_mask", "token_type_ids", "topic"}
    assert columns["tokens"].shape == (8, 12) and columns["topic"].max() < 3


@pytest.mark.parametrize("columns, message", [
    ("{input_id: tokens}", "dataset planted_tokens has no column 'input_id'; did you mean 'input_ids'?; its "
                           "columns: input_ids, attention_mask, token_type_ids, label"),
    ("{input_ids: token}", "data.columns maps input_ids to 'token', which is neither an input nor an output of the "
                           "model; did you mean 'tokens'?; inputs: tokens, attention_mask; outputs: label"),
    ("{token_type_ids: tokens}", "dataset planted_tokens's column input_ids sets the sequence length, so it must "
                                 "feed a model input; inputs: tokens, attention_mask"),
    ("{label: attention_mask}", "data.columns feeds 'attention_mask' from both attention_mask and label"),
    ("{input_ids: tokens, token_type_ids: tokens}", "data.columns feeds 'tokens' from both input_ids and "
                                                    "token_type_ids"),
])
def test_data_columns_errors_are_located(columns, message):
    text = CLASSIFIER.format(data=f"{{dataset: planted_tokens, columns: {columns}}}", length=12, table=40,
                             classes=3, ids="tokens", label="label")
    with pytest.raises(dsl.SpecError) as info:
        dsl.loads(text)
    assert info.value.location.line == 9 and message in info.value.message


def test_npz_columns_are_mapped_too(tmp_path):
    ids = np.arange(24).reshape(4, 6) % 5
    np.savez(tmp_path / "d.npz", tokens_train=ids, tokens_test=ids[:2], topic_train=np.arange(4) % 3,
             topic_test=np.zeros(2, np.int64), mask_train=ids > 0, mask_test=ids[:2] > 0)
    spec, graph = classifier(f"{{dataset: npz, path: {tmp_path / 'd.npz'}, columns: {{tokens: input_ids, "
                             f"topic: label, mask: attention_mask}}}}", length=6)
    data = load_dataset(spec, graph)
    assert np.array_equal(data.train["input_ids"], ids) and data.test["label"].tolist() == [0, 0]


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


TRAIN_CSV = 'text,label\nthe cat sat,pets\n"a dog, a cat",pets\nstocks fell,money\nthe market rose,money\n'
TEST_CSV = "text,label\nthe zebra sat,pets\nbonds fell,money\n"


def test_text_classification_builds_its_vocabulary_from_the_training_split_only(tmp_path):
    write(tmp_path, "train.csv", TRAIN_CSV)
    write(tmp_path, "test.csv", TEST_CSV)
    spec, graph = classifier(f"{{dataset: text_classification, path: {tmp_path}, tokenizer: vocab}}", length=4,
                             classes=2)
    data = load_dataset(spec, graph)
    vocab = json.loads(data.files["vocab.json"])
    assert list(vocab)[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and "zebra" not in vocab and "bonds" not in vocab
    assert [vocab[w] for w in ("a", "cat", "the")] == [4, 5, 6]  # the most frequent first (twice), alphabetical
    assert data.train["label"].tolist() == [1, 1, 0, 0]  # money, pets: sorted names
    assert data.test["input_ids"].tolist() == [[vocab["the"], 3, vocab["sat"], 0], [3, vocab["fell"], 0, 0]]
    assert data.test["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 0, 0]]
    assert data.train["input_ids"][1].tolist() == [vocab["a"], vocab["dog"], vocab[","], vocab["a"]]  # cut to 4


def test_char_tokenizer_and_jsonl_with_integer_labels(tmp_path):
    write(tmp_path, "train.jsonl", '{"text": "ab", "label": 1}\n\n{"text": "ba a", "label": 0}\n')
    write(tmp_path, "test.jsonl", '{"text": "abc", "label": 1}\n')
    spec, graph = classifier(f"{{dataset: text_classification, path: {tmp_path}, tokenizer: {{char: {{max_size: "
                             f"2}}}}}}", length=5, classes=2)
    data = load_dataset(spec, graph)
    assert json.loads(data.files["vocab.json"]) == {"<pad>": 0, "<bos>": 1, "<eos>": 2, "<unk>": 3, "a": 4, "b": 5}
    assert data.train["input_ids"].tolist() == [[4, 5, 0, 0, 0], [5, 4, 3, 4, 0]]  # the space is past max_size
    assert data.test["input_ids"].tolist() == [[4, 5, 3, 0, 0]] and data.train["label"].tolist() == [1, 0]


def test_a_tokenizers_file_encodes_as_the_tokenizers_library_does(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "the": 4, "cat": 5, "sat": 6, "a": 7}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    write(tmp_path, "train.csv", TRAIN_CSV)
    write(tmp_path, "test.csv", TEST_CSV)
    spec, graph = classifier(f"{{dataset: text_classification, path: {tmp_path}, tokenizer: {{file: "
                             f"{tmp_path / 'tokenizer.json'}}}}}", length=5, classes=2, table=8)
    data = load_dataset(spec, graph)
    assert data.train["input_ids"][0].tolist() == tokenizer.encode("the cat sat").ids + [0, 0] == [4, 5, 6, 0, 0]
    assert data.test["input_ids"][0].tolist() == [4, 1, 6, 0, 0] and data.files == {}
    spec, graph = classifier(f"{{dataset: text_classification, path: {tmp_path}, tokenizer: {{file: "
                             f"{tmp_path / 'tokenizer.json'}}}}}", length=5, classes=2, table=6)
    with pytest.raises(dsl.DataError, match=r"gives ids up to 7, but the table reading input_ids has 6 rows"):
        load_dataset(spec, graph)


@pytest.mark.parametrize("name, content, message", [
    ("train.csv", "text,label\nfine,a\nno label here\n", ":3: 1 fields, but the header names 2 (text, label); quote "
                                                         "a field that holds a comma"),
    ("train.csv", "words,topic\nx,y\n", ":1: the header names words, topic; a text classification CSV starts with "
                                        "a header naming the columns text and label"),
    ("train.csv", b"text,label\nok,a\ncaf\xe9,b\n", ":3: not UTF-8 text (byte 0xe9); save the file as UTF-8"),
    ("train.jsonl", '{"text": "a", "label": "x"}\n{"text": "b" "label": "y"}\n',
     ':2:14: not JSON (Expecting \',\' delimiter); each line is one object, {"text": "...", "label": ...}'),
    ("train.jsonl", '{"text": "a", "label": "x"}\n["b", "y"]\n',
     ':2:1: a JSON list; each line is one object with text and label, {"text": "...", "label": ...}'),
    ("test.csv", "text,label\nfine,c\n", ":2: label 'c' is not a class of the training split (a, b)"),
])
def test_a_malformed_text_file_is_one_located_line(tmp_path, name, content, message):
    write(tmp_path, "train.csv", "text,label\nx,a\ny,b\n")
    write(tmp_path, "test.csv", "text,label\nx,a\n")
    if name.endswith(".jsonl"):
        (tmp_path / "train.csv").unlink()
    write(tmp_path, name, content)
    spec, graph = classifier(f"{{dataset: text_classification, path: {tmp_path}, tokenizer: char}}", classes=2)
    with pytest.raises(dsl.DataError) as info:
        load_dataset(spec, graph)
    assert str(info.value) == f"{tmp_path / name}{message}"


PAIRS = """\
name: t
inputs:
  source: {shape: [5], dtype: int64}
  target_in: {shape: [4], dtype: int64}
model:
  - embedding: {num_embeddings: 30, embedding_dim: 4, inputs: [source], name: s}
  - embedding: {num_embeddings: 30, embedding_dim: 4, inputs: [target_in], name: t}
outputs: [s, t]
data: {dataset: parallel_text, path: PATH, tokenizer: vocab}
"""


def test_parallel_text_gives_teacher_forcing_columns_from_one_vocabulary(tmp_path):
    write(tmp_path, "train.tsv", "a b c\tc b a\nb b\tb b\n")
    write(tmp_path, "test.tsv", "c a d\ta c e f g h\n")
    spec, graph = dsl.loads(PAIRS.replace("PATH", str(tmp_path)))
    data = load_dataset(spec, graph)
    vocab = json.loads(data.files["vocab.json"])
    assert list(vocab)[4:] == ["b", "a", "c"]  # b 5 times, a and c twice: counted over sources and targets
    a, b, c = vocab["a"], vocab["b"], vocab["c"]
    assert data.train["source"].tolist() == [[a, b, c, 0, 0], [b, b, 0, 0, 0]]
    assert data.train["target_in"].tolist() == [[1, c, b, a], [1, b, b, 0]]
    assert data.train["target_out"].tolist() == [[c, b, a, 2], [b, b, 2, IGNORE]]
    assert data.test["target_out"].tolist() == [[a, c, 3, 2]]  # cut to 3 tokens, then EOS; unseen e is <unk>
    assert data.test["source_mask"].tolist() == [[1, 1, 1, 0, 0]]


def test_parallel_text_line_without_a_tab(tmp_path):
    write(tmp_path, "train.tsv", "a\tb\nno tab here\n")
    write(tmp_path, "test.tsv", "a\tb\n")
    spec, graph = dsl.loads(PAIRS.replace("PATH", str(tmp_path)))
    with pytest.raises(dsl.DataError, match=r"train\.tsv:2: 1 tab-separated fields; each line is one pair"):
        load_dataset(spec, graph)


def test_ag_news_offline_says_where_to_put_the_files_and_reads_them_once_there(tmp_path, monkeypatch):
    def offline(*args):
        raise OSError("no network")
    monkeypatch.setattr(text_files, "fetch", offline)  # torchvision's download_url, as it fails offline
    spec, graph = classifier("{dataset: ag_news, tokenizer: vocab}", classes=4)
    with pytest.raises(dsl.DataError) as info:
        load_dataset(spec, graph, data_dir=tmp_path)
    assert str(info.value).startswith(f"ag_news is not in {tmp_path / 'ag_news'} and could not be downloaded (no "
                                      f"network?); put train.csv and test.csv from https://")
    assert not (tmp_path / "ag_news").exists()  # nothing left behind
    train = write(tmp_path / "ag_news", "train.csv", '"3","Wall St.","Stocks rose"\n"2","Cup","A goal"\n')
    test = write(tmp_path / "ag_news", "test.csv", '"1","Summit","Leaders met"\n')
    with pytest.raises(dsl.DataError, match="is not AG News's published train.csv"):
        load_dataset(spec, graph, data_dir=tmp_path)
    monkeypatch.setattr(text_files, "AG_NEWS_MD5", {"train": md5(train), "test": md5(test)})
    data = load_dataset(spec, graph, data_dir=tmp_path)
    vocab = json.loads(data.files["vocab.json"])
    assert data.train["label"].tolist() == [2, 1] and data.test["label"].tolist() == [0]
    assert data.train["input_ids"][0, :5].tolist() == [vocab[w] for w in ("Wall", "St", ".", "Stocks", "rose")]


def md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()


def test_training_keeps_the_vocabulary_beside_the_weights_and_predict_reads_texts_with_it(tmp_path):
    from backends.loop import TrainOptions, train
    from backends.predict import predict, predict_file
    from backends.weights import load_weights

    write(tmp_path, "train.csv", TRAIN_CSV)
    write(tmp_path, "test.csv", TEST_CSV)
    spec, graph = dsl.loads(textwrap.dedent(f"""\
        name: t
        inputs: {{input_ids: {{shape: [4], dtype: int64}}}}
        model:
          - embedding: {{num_embeddings: 20, embedding_dim: 4}}
          - flatten
          - linear: {{out_features: 2, name: label}}
        data: {{dataset: text_classification, path: {tmp_path}, tokenizer: vocab}}
        train: {{loss: cross_entropy, optimizer: adam, batch_size: 2}}
        """))
    run = tmp_path / "run"
    train(spec, graph, TrainOptions(target="torch", out_dir=run, progress=False))
    data = load_dataset(spec, graph)
    assert (run / "vocab.json").read_bytes() == data.files["vocab.json"]
    texts = write(tmp_path, "texts.txt", "the zebra sat\nbonds fell\n")
    out = predict_file(spec, graph, "torch", run / "weights.safetensors", texts, tmp_path / "y.npy")
    expected = predict(spec, graph, "torch", load_weights(run / "weights.safetensors", graph), data.test["input_ids"])
    np.testing.assert_array_equal(out, expected)
