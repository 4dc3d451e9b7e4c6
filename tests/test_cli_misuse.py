"""The command-line misuse corpus: every mistake is one line on stderr, exit 2, no traceback.

In the spirit of ``tests/bad_specs``: each case is a command line a person could
type (bad paths, wrong files, wrong shapes and dtypes, wrong flags, loss and label
mismatches) and a fragment of the message it must print. Cases marked ``early``
must be refused before torch or JAX is even imported, i.e. before anything is
compiled: the runner records which frameworks the process had loaded after each
case. The cases run in one process (one interpreter start, not fifty), early ones
first; a framework, once imported, stays, so the first case that loads one fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dsl
from backends.checkpoint import Position, RunConfig, save_checkpoint, spec_sha256
from backends.optimizer_state import STEP, step_array
from backends.weights import init_weights, save_weights
from tests.conftest import REPO

RUNNER = """
import contextlib, io, json, sys
import cli
results = []
for args in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(args)
        except SystemExit as stop:
            code = stop.code
    results.append([code, out.getvalue(), err.getvalue(), [m for m in ("torch", "jax") if m in sys.modules]])
print(json.dumps(results))
"""

CNN, MLP = "specs/digits_cnn.yaml", "specs/digits_mlp.yaml"
P = "predict " + CNN + " --weights {w} --output {tmp}/out.npy --input "
D = "decode specs/transformer_translate.yaml --weights {w} --input "
T = "predict {tmp}/tagger.yaml --weights {tmp}/tagger.safetensors --output {tmp}/out.npy --input "
TAGGER = """
name: tagger
inputs:
  ids: {shape: [6], dtype: int64}
  attention_mask: {shape: [6], dtype: int64, mask: keep}
model:
  - embedding: {num_embeddings: 12, embedding_dim: 4, inputs: [ids], name: tokens}
  - embedding: {num_embeddings: 2, embedding_dim: 4, inputs: [attention_mask], name: padding}
  - add: {inputs: [tokens, padding]}
"""
POOL = """
name: pool
input: {shape: [2, 8, 8]}
model:
  - conv2d: {out_channels: 2, kernel_size: 1}
  - avg_pool2d: {kernel_size: 3, stride: 2, padding: 1, divisor_override: 4}
"""

# (id, command line with {tmp} and {w} placeholders, message fragment, refused before a framework loads)
CASES = [
    # --- the command line itself ---
    ("no_verb", "", "dslc: error: the following arguments are required: VERB", True),
    ("unknown_verb", "trian " + CNN, "invalid choice: 'trian'", True),
    ("missing_spec", "train", "dslc train: error: the following arguments are required: spec", True),
    ("misspelt_flag", "train " + CNN + " --epoch 3", "unrecognized arguments: --epoch 3; did you mean --epochs?", True),
    ("unknown_target", "train " + CNN + " --target tensorflow", "argument --target: invalid choice: 'tensorflow'",
     True),
    ("zero_epochs", "train " + CNN + " --epochs 0", "argument --epochs: must be at least 1, got 0", True),
    ("word_for_batch_size", "train " + CNN + " --batch-size abc", "must be a whole number, got 'abc'", True),
    ("negative_lr", "train " + CNN + " --lr -1", "argument --lr: must be a positive number, got -1", True),
    ("zero_threads", "train " + CNN + " --threads 0", "argument --threads: must be at least 1", True),
    ("unknown_pass", "train " + CNN + " --no-optimize bogus", "unknown pass bogus", True),
    ("compile_on_jax", "train " + CNN + " --target jax --compile", "--compile applies to --target torch", True),
    ("float16_check", "check " + CNN + " --dtype float16", "argument --dtype: invalid choice: 'float16'", True),
    ("predict_without_weights", "predict " + CNN + " --input x.npy --output y.npy",
     "the following arguments are required: --weights", True),
    # --- paths ---
    ("spec_missing", "validate {tmp}/missing.yaml", "missing.yaml:1:1: cannot read spec: No such file", True),
    ("spec_is_a_folder", "train specs", "specs:1:1: cannot read spec: Is a directory", True),
    ("out_is_a_file", "train " + CNN + " --out {tmp}/file.txt", "is a file, not a folder", True),
    ("out_holds_a_run", "train " + CNN + " --out {tmp}/run", "already holds a run (summary.json", True),
    ("weights_missing", "eval " + CNN + " --weights {tmp}/none.safetensors", "cannot read weights", True),
    ("weights_not_safetensors", "eval " + CNN + " --weights {tmp}/file.txt", "not a safetensors file", True),
    ("weights_of_another_model", "eval " + CNN + " --weights {tmp}/mlp.safetensors",
     "names do not match model 'digits_cnn'", True),
    ("output_folder_missing", P + "{tmp}/raw.npy --output {tmp}/no/such/out.npy",
     "the folder {tmp}/no/such does not exist", True),
    ("output_is_a_folder", P + "{tmp}/raw.npy --output {tmp}", "is a folder; give a file name", True),
    # --- what predict is given ---
    ("input_missing", P + "{tmp}/none.npy", "--input {tmp}/none.npy: no such file", True),
    ("input_npz", P + "{tmp}/x.npz", "--input {tmp}/x.npz has no array 'input' (it holds images, labels; the "
     "model's input is input): numpy.savez('x.npz', input=...)", True),
    ("input_csv", P + "{tmp}/x.csv", "is not a .npy file", True),
    ("input_pickled", P + "{tmp}/objects.npy", "holds Python objects", True),
    ("input_strings", P + "{tmp}/strings.npy", "not numbers", True),
    ("input_channels_last", P + "{tmp}/nhwc.npy", "look channels-last: dslc takes channels first, "
     "x.transpose(0, 3, 1, 2)", True),
    ("input_flattened", P + "{tmp}/flat.npy", "look flattened: x.reshape(-1, 1, 8, 8)", True),
    ("input_empty", P + "{tmp}/empty.npy", "the inputs hold no examples", True),
    ("input_nan", P + "{tmp}/nan.npy", "hold 1 NaN or infinite values", True),
    ("input_int_transformed", P + "{tmp}/raw_int.npy --transformed", "drop --transformed", True),
    ("input_already_normalized", P + "{tmp}/normalized.npy", "if they are already transformed", True),
    ("predict_gan_without_model", "predict specs/gan_digits.yaml --weights {w} --input {tmp}/raw.npy --output "
     "{tmp}/out.npy", "this spec has 2 models (generator, discriminator); choose the one to run with --model", True),
    ("predict_unknown_model", "predict specs/gan_digits.yaml --weights {w} --input {tmp}/raw.npy --output "
     "{tmp}/out.npy --model gen", "--model gen: the spec has no model of that name; its models are generator", True),
    ("predict_model_of_one", P + "{tmp}/raw.npy --model generator", "it has one model: leave --model out", True),
    ("predict_two_outputs_to_npy", "predict specs/multi_head.yaml --weights {w} --input {tmp}/raw.npy --output "
     "{tmp}/out.npy", "the model has 2 outputs; give a .npz file", True),
    ("predict_two_inputs", "predict specs/two_tower.yaml --weights {w} --input {tmp}/raw.npy --output "
     "{tmp}/out.npy", "the model has 2 inputs (user, features); give an .npz holding one array per input: "
     "numpy.savez('x.npz', user=..., features=...)", True),
    # --- named inputs in an .npz (ids and a padding mask) ---
    ("npz_missing_input", T + "{tmp}/tags_missing.npz", "has no array 'attention_mask' (it holds ids; the model's "
     "inputs are ids, attention_mask)", True),
    ("npz_extra_array", T + "{tmp}/tags_extra.npz", "holds 'labels', which is not an input of the model", True),
    ("npz_float_ids", T + "{tmp}/tags_float.npz", "ids: the inputs are float64; the model's input is int64", True),
    ("npz_wrong_shape", T + "{tmp}/tags_short.npz", "ids: the inputs have shape [3, 5]; the model takes [N, 6]", True),
    ("npz_mask_values", T + "{tmp}/tags_mask2.npz", "attention_mask: the inputs are a padding mask (keep: nonzero "
     "marks a real token) but hold values other than 0 and 1 (2)", True),
    ("npz_ids_outside_table", T + "{tmp}/tags_ids.npz", "ids: the inputs hold ids 1..12, but a table reading them "
     "has 12 rows: ids must lie in 0..11", True),
    ("npz_counts_differ", T + "{tmp}/tags_counts.npz", "the inputs hold different numbers of examples (ids 3, "
     "attention_mask 2)", True),
    # --- what decode is given ---
    ("decode_without_section", "decode " + CNN + " --weights {w} --input {tmp}/raw.npy",
     "spec digits_cnn has no decode: section", True),
    ("decode_generated_input", D + "{tmp}/pairs_generated.npz", "holds 'target_in', which greedy decoding generates "
     "itself; give only the other inputs (source, source_mask)", True),
    ("decode_missing_input", D + "{tmp}/pairs_missing.npz", "has no array 'source_mask'", True),
    ("decode_output_suffix", D + "{tmp}/pairs.npz --output {tmp}/out.txt", "--output {tmp}/out.txt: give a .npy "
     "file", True),
    # --- what export is given ---
    ("export_unknown_format", "export " + CNN + " --format tflite --out {tmp}/m.tflite",
     "argument --format: invalid choice: 'tflite' (choose from 'onnx', 'stablehlo', 'torch-export')", True),
    ("export_without_out", "export " + CNN + " --format onnx", "the following arguments are required: --out", True),
    ("export_weights_missing", "export " + CNN + " --format onnx --out {tmp}/m.onnx --weights {tmp}/none.safetensors",
     "cannot read weights", True),
    ("export_weights_of_another_model", "export " + CNN + " --format stablehlo --out {tmp}/m.stablehlo --weights "
     "{tmp}/mlp.safetensors", "names do not match model 'digits_cnn'", True),
    ("export_gan_without_model", "export specs/gan_digits.yaml --format onnx --out {tmp}/g.onnx",
     "this spec has 2 models (generator, discriminator); choose the one to run with --model", True),
    ("export_unknown_model", "export specs/gan_digits.yaml --format onnx --out {tmp}/g.onnx --model gen",
     "--model gen: the spec has no model of that name; its models are generator, discriminator", True),
    ("export_out_folder_missing", "export " + CNN + " --format onnx --out {tmp}/no/such/m.onnx",
     "the folder {tmp}/no/such does not exist", True),
    ("export_out_is_a_folder", "export " + CNN + " --format torch-export --out {tmp}",
     "--out {tmp} is a folder; give a file name such as {tmp}/model.pt2", True),
    ("export_layer_onnx_cannot_hold", "export {tmp}/pool.yaml --format onnx --out {tmp}/pool.onnx",
     "pool.yaml:6:57: layer 'avg_pool2d_1' (avg_pool2d) cannot be exported to onnx: torch's ONNX exporter drops "
     "divisor_override", False),
    # --- data, losses and labels ---
    ("unknown_dataset", "train " + CNN + " --dataset cifar100", "unknown dataset 'cifar100'", True),
    ("dataset_shape", "train " + CNN + " --dataset mnist", "dataset mnist has examples of shape [N, 1, 28, 28]",
     True),
    ("mse_on_classes", "train tests/bad_specs/mse_on_class_labels.yaml", "mse takes float targets", True),
    ("bce_on_classes", "train tests/bad_specs/bce_on_class_labels.yaml", "bce_with_logits takes", True),
    ("train_size_too_large", "train tests/bad_specs/train_size_too_large.yaml", "data.train_size is 100,000", True),
    ("keras_loss", "train tests/bad_specs/keras_loss.yaml", "dslc's is 'cross_entropy'", True),
    # --- resuming a run ---
    ("resume_missing_folder", "train --resume {tmp}/nowhere", "--resume {tmp}/nowhere: no such folder", True),
    ("resume_a_file", "train --resume {tmp}/file.txt", "is a file; give the run folder", True),
    ("resume_without_checkpoint", "train --resume {tmp}/run", "holds no checkpoint.safetensors", True),
    ("resume_junk_checkpoint", "train --resume {tmp}/junk", "not a dslc checkpoint", True),
    ("resume_changed_spec", "train --resume {tmp}/started", "the spec {tmp}/spec.yaml is not the one the run "
     "started from", True),
    ("resume_other_spec", "train " + CNN + " --resume {tmp}/started", "the spec specs/digits_cnn.yaml is not the one",
     True),
    ("resume_with_run_flags", "train --resume {tmp}/started --target torch --lr 0.1",
     "continues a run with the options it started with; drop --target, --lr", True),
    ("resume_complete_run", "train --resume {tmp}/complete", "the run is complete (90 steps, 2 epochs)", True),
    ("train_without_spec", "train --epochs 2", "the following arguments are required: spec (or --resume", True),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("misuse")
    (tmp / "file.txt").write_text("not weights\n")
    (tmp / "x.csv").write_text("a,b\n1,2\n")
    (tmp / "run").mkdir()
    (tmp / "run" / "summary.json").write_text("{}")
    for spec, name in ((CNN, "cnn"), (MLP, "mlp")):
        save_weights(tmp / f"{name}.safetensors", init_weights(dsl.load(spec)[1], seed=0))
    raw = np.random.default_rng(0).integers(0, 17, (4, 1, 8, 8))
    arrays = {"raw": raw.astype(np.float64), "raw_int": raw, "nhwc": raw.transpose(0, 2, 3, 1),
              "flat": raw.reshape(4, 64), "empty": raw[:0], "normalized": (raw / 16 - 0.5) / 0.5,
              "strings": np.array([["a"] * 8] * 8)[None], "nan": np.where(raw == raw.max(), np.nan, raw)[:1]}
    arrays["nan"].flat[1:] = 0
    arrays["nan"].flat[0] = np.nan
    for name, array in arrays.items():
        np.save(tmp / f"{name}.npy", array)
    np.save(tmp / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp / "x.npz", images=raw, labels=np.zeros(4))
    (tmp / "pool.yaml").write_text(POOL)
    _tagger(tmp)
    _pairs(tmp)
    _checkpoints(tmp)
    return {"tmp": str(tmp), "w": str(tmp / "cnn.safetensors")}


def _tagger(tmp: Path) -> None:
    """A model of two named inputs, ids and a padding mask, its weights, and .npz files of its inputs gone wrong."""
    (tmp / "tagger.yaml").write_text(TAGGER)
    save_weights(tmp / "tagger.safetensors", init_weights(dsl.loads(TAGGER)[1], seed=0))
    ids, mask = np.arange(18).reshape(3, 6) % 12, np.array([[1] * 6, [1] * 3 + [0] * 3, [1] + [0] * 5])
    for name, arrays in {"missing": {"ids": ids}, "extra": {"ids": ids, "attention_mask": mask, "labels": ids},
                         "float": {"ids": ids * 1.0, "attention_mask": mask},
                         "short": {"ids": ids[:, :5], "attention_mask": mask},
                         "mask2": {"ids": ids, "attention_mask": mask * 2},
                         "ids": {"ids": ids + 1, "attention_mask": mask},
                         "counts": {"ids": ids, "attention_mask": mask[:2]}}.items():
        np.savez(tmp / f"tags_{name}.npz", **arrays)


def _pairs(tmp: Path) -> None:
    """Inputs of specs/transformer_translate for decode: its source, and the same gone wrong."""
    source = np.array([[3, 4, 5, 0, 0, 0, 0, 0, 0, 0]])
    mask = (source > 0).astype(np.int64)
    np.savez(tmp / "pairs.npz", source=source, source_mask=mask)
    np.savez(tmp / "pairs_missing.npz", source=source)
    np.savez(tmp / "pairs_generated.npz", source=source, source_mask=mask, target_in=source)


def _checkpoints(tmp: Path) -> None:
    """Run folders for the --resume cases: one whose spec was edited since, one complete, one junk."""
    text = (REPO / MLP).read_text()
    (tmp / "spec.yaml").write_text(text)
    weights = init_weights(dsl.load(MLP)[1], seed=0)
    run = RunConfig("digits_mlp", str(tmp / "spec.yaml"), spec_sha256(text), "jax", 0, 2, None, None, None, None,
                    "data", train_examples=1437, total_steps=90)
    save_checkpoint(tmp / "started", weights, {STEP: step_array(20)}, run, Position(20, 0, 20), text)
    save_checkpoint(tmp / "complete", weights, {STEP: step_array(90)}, run, Position(90, 2, 0), text)
    (tmp / "spec.yaml").write_text(text.replace("epochs: 30", "epochs: 40"))
    (tmp / "junk").mkdir()
    (tmp / "junk" / "checkpoint.safetensors").write_bytes(b"junk")


@pytest.fixture(scope="module")
def outcomes(files) -> dict[str, list]:
    """Case id -> [exit code, stdout, stderr, frameworks loaded so far], all cases in one process."""
    ordered = sorted(CASES, key=lambda case: not case[3])  # early cases first
    argv = [[a.format(**files) for a in case[1].split()] for case in ordered]
    result = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(argv)], cwd=REPO, capture_output=True,
                            text=True, timeout=600, check=True)
    return dict(zip((case[0] for case in ordered), json.loads(result.stdout.splitlines()[-1])))


def test_the_corpus_is_large_and_unique():
    assert len(CASES) >= 25
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case, fragment, early", [(c[0], *c[2:]) for c in CASES], ids=[c[0] for c in CASES])
def test_misuse_is_one_line_exit_2(outcomes, files, case, fragment, early):
    code, stdout, stderr, loaded = outcomes[case]
    assert code == 2, stderr
    assert "Traceback" not in stderr
    errors = [s for s in stderr.splitlines() if ": warning: " not in s]
    assert len(errors) == 1, stderr
    assert fragment.format(**files) in errors[0], errors[0]
    assert stdout == ""
    if early:
        assert loaded == [], f"refused only after loading {loaded}"
