"""How a spec turns a model's per-step scores into token sequences: the ``decode:`` section.

Two greedy decoders, both written once (``backends/decode.py``) over a target's
evaluation-mode forward, so both targets decode with the same loop:

- ``greedy``: autoregressive, for an encoder-decoder (``transformer_translate``).
  The ``tokens`` input starts as ``bos`` then padding; step t runs the model and
  writes the argmax of ``output[:, t]`` at position t + 1, until every row has
  produced ``eos`` or the input is full. The model must be causal in ``tokens``
  (a decoder with ``causal: true``): position t then never sees the padding after it.
  If the model reads a padding mask of ``tokens`` (``mask``), it is 1 up to the
  current step.
- ``ctc``: per frame argmax, repeats merged, blanks dropped (Graves et al. 2006's
  best path), for a CTC model (``lstm_speech_ctc``).

``reference`` names the batch column holding the true sequences, and ``metrics``
what ``dslc eval`` reports from the decoded test split: corpus ``bleu`` (sacrebleu),
``cer``/``wer`` (jiwer), ``sequence_accuracy`` (every token right).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .choice import choice_error
from .errors import SpecSchemaError, did_you_mean
from .training import DATASETS
from .types import NonNegativeInt, Params, PositiveInt

Name = Annotated[str, Field(min_length=1)]

DECODE_METRICS = ("bleu", "cer", "wer", "sequence_accuracy")


class GreedySpec(Params):
    tokens: Name = Field(description="the model input that grows: bos, then one argmax per step")
    output: Name | None = Field(None, description="the output whose scores [N, T, vocabulary] pick each next token "
                                                  "(default: the model's only output)")
    mask: Name | None = Field(None, description="the padding-mask input of tokens, if the model reads one")
    bos: NonNegativeInt
    eos: NonNegativeInt
    pad: NonNegativeInt = 0
    max_length: PositiveInt | None = Field(None, description="tokens to generate at most (default: the input's "
                                                             "length - 1)")


class CtcDecodeSpec(Params):
    output: Name | None = Field(None, description="the output whose per-frame scores [N, T, classes] are decoded")
    blank: NonNegativeInt = 0
    lengths: Name | None = Field(None, description="the batch column of valid frames per example (default: all)")


class DecodeSpec(Params):
    greedy: GreedySpec | None = None
    ctc: CtcDecodeSpec | None = None
    reference: Name | None = Field(None, description="the batch column holding the true sequences, for metrics")
    metrics: list[Literal[DECODE_METRICS]] = []

    @model_validator(mode="after")
    def _one_decoder(self) -> DecodeSpec:
        if self.greedy is not None and self.ctc is not None:
            raise choice_error("decode gives greedy and ctc; give exactly one decoder: greedy (autoregressive, an "
                               "encoder-decoder) or ctc (per-frame scores)", ("ctc",), at_key=True)
        if self.greedy is None and self.ctc is None:
            raise choice_error("decode gives no decoder; give exactly one decoder: greedy {tokens, bos, eos} "
                               "(autoregressive) or ctc {blank} (per-frame scores)")
        if self.metrics and self.reference is None:
            raise choice_error("decode.metrics need reference: the batch column holding the true sequences "
                               "(reference: target_out)", ("metrics",), at_key=True)
        return self

    @property
    def mode(self) -> str:
        return "greedy" if self.greedy is not None else "ctc"

    @property
    def output(self) -> str | None:
        return (self.greedy or self.ctc).output


def check_decode(spec, graph) -> None:
    """Raises a located error unless ``decode:`` names the model's inputs and a [N, T, classes] output."""
    decode, mode = spec.decode, spec.decode.mode
    inputs, outputs = dict(graph.inputs), dict(graph.outputs)
    output = decode.output or (next(iter(outputs)) if len(outputs) == 1 else None)
    if output is None:
        raise SpecSchemaError(f"the model has {len(outputs)} outputs; name the one to decode: output: "
                              f"{' | '.join(outputs)}", spec.source.locate(("decode", mode)))
    if output not in outputs:
        raise SpecSchemaError(f"decode.{mode}.output '{output}' is not a model output{did_you_mean(output, outputs)}; "
                              f"outputs: {', '.join(outputs)}", spec.source.locate(("decode", mode, "output")))
    scores = graph.node(outputs[output]).output if outputs[output] not in inputs else inputs[outputs[output]]
    if scores.rank != 2:
        raise SpecSchemaError(f"decode reads scores [N, T, classes] from '{output}', which is "
                              f"[N, {', '.join(map(str, scores.shape))}]; decode a per-position output (a linear "
                              f"over the sequence, before any flatten or pooling)",
                              spec.source.locate(("decode", mode)))
    if mode == "greedy":
        _check_greedy_inputs(spec, decode.greedy, inputs)
    _check_columns(spec, decode)


def batch_column(spec, name: str) -> str:
    """The batch column ``reference`` or ``lengths`` reads: a dataset column by its own name (``target_out``)
    even where ``data.columns`` renames it to feed an output, or a batch column by name."""
    mapping = spec.data.columns if spec.data else {}
    return mapping.get(name, name)


def _check_columns(spec, decode: DecodeSpec) -> None:
    """``reference`` and ctc's ``lengths`` name columns of a dataset that declares its columns."""
    dataset = DATASETS.get(spec.data.dataset) if spec.data else None
    if dataset is None or not dataset.columns:
        return
    own = [c.name for c in dataset.columns]
    have = own + [v for v in (spec.data.columns or {}).values() if v not in own]
    fields = [("reference",)] + ([("ctc", "lengths")] if decode.ctc is not None else [])
    for path in fields:
        name = getattr(decode.ctc, "lengths") if path == ("ctc", "lengths") else decode.reference
        if name is not None and name not in have:
            raise SpecSchemaError(f"decode.{'.'.join(path)} '{name}' is not a column of dataset {dataset.name}"
                                  f"{did_you_mean(name, have)}; its columns: {', '.join(own)}",
                                  spec.source.locate(("decode", *path)))


def _check_greedy_inputs(spec, greedy: GreedySpec, inputs: dict) -> None:
    for field in ("tokens", "mask"):
        name = getattr(greedy, field)
        if name is None:
            continue
        if name not in inputs:
            raise SpecSchemaError(f"decode.greedy.{field} '{name}' is not a model input{did_you_mean(name, inputs)}; "
                                  f"inputs: {', '.join(inputs)}", spec.source.locate(("decode", "greedy", field)))
        if inputs[name].is_float or inputs[name].rank != 1:
            raise SpecSchemaError(f"decode.greedy.{field} '{name}' must be an integer input of shape [T]",
                                  spec.source.locate(("decode", "greedy", field)))
