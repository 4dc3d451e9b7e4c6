"""The malformed-spec corpus: every file in ``tests/bad_specs`` fails with one located line.

Each case names the file, the exact 1-based line and column the error must point at
(checked by reading the file: the column is the offending key or value, not merely
its line) and a fragment of the message. ``dslc validate`` must print exactly
``path:line:col: message`` on stderr, nothing on stdout, and exit 2, never with a
traceback; ``dsl.load`` must raise a ``SpecError`` at the same place.

Adding a file to ``tests/bad_specs`` without a row here fails ``test_every_file_is_checked``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import dsl

REPO = Path(__file__).resolve().parents[1]
BAD = REPO / "tests" / "bad_specs"

# (file, line, col, message fragment)
CASES = [
    # --- not a YAML document dslc will read ---
    ("empty.yaml", 1, 1, "spec is empty"),
    ("comments_only.yaml", 1, 1, "spec is empty"),
    ("document_marker_only.yaml", 1, 1, "spec is empty"),
    ("not_utf8.yaml", 2, 17, "not UTF-8 text (byte 0xe9)"),  # the é after "caf"
    ("control_character.yaml", 4, 9, "character U+0007 is not allowed"),  # the BEL after "relu"
    ("tab_indent.yaml", 5, 1, "tab character in indentation"),
    ("bad_indent.yaml", 5, 4, "expected <block end>"),  # the "-" one column right of its siblings
    ("unclosed_bracket.yaml", 2, 26, "expected ',' or ']', but got '}'"),
    ("unclosed_quote.yaml", 2, 14, "while scanning a quoted scalar"),  # where the quote opens
    ("two_documents.yaml", 5, 1, "more than one YAML document"),
    ("undefined_alias.yaml", 4, 13, "undefined alias 'fc_args'"),
    ("duplicate_key.yaml", 4, 31, "duplicate key 'out_features'"),  # the second one
    ("complex_key.yaml", 3, 3, "mapping keys must be plain names"),
    ("merge_not_mapping.yaml", 4, 18, "'<<' merges mappings only"),
    # --- unsafe or exotic YAML ---
    ("python_tag.yaml", 2, 14, "YAML tag '!!python/object/apply:os.system' is not allowed"),
    ("python_name_tag.yaml", 4, 28, "YAML tag '!!python/name:os.system' is not allowed"),
    ("binary_tag.yaml", 2, 14, "YAML tag '!!binary' is not allowed"),
    ("custom_tag.yaml", 4, 13, "YAML tag '!layer' is not allowed"),
    ("timestamp_value.yaml", 2, 14, "'2024-05-01' reads as a YAML timestamp"),
    ("alias_bomb.yaml", 1, 15, "more than 100,000 values"),
    ("recursive_alias.yaml", 3, 8, "recursive alias"),  # the &layers anchor
    ("too_deep.yaml", 3, 78, "nests deeper than 64 levels"),  # the 65th "["
    # --- the spec's shape: sections, keys and types ---
    ("not_a_mapping.yaml", 1, 1, "a spec is a mapping"),
    ("missing_model.yaml", 1, 1, "missing required key 'model'"),
    ("unknown_top_key.yaml", 5, 1, "unknown key 'trian' in the spec; did you mean 'train'?"),
    ("newline_in_key.yaml", 2, 1, r"unknown key 'trian\nx'"),  # printed escaped, on one line
    ("bad_spec_name.yaml", 1, 7, "name should match pattern"),
    ("model_not_a_list.yaml", 4, 3, "model should be a valid list"),
    ("empty_model.yaml", 3, 8, "model should have at least 1 item"),
    ("negative_input_shape.yaml", 2, 20, "input.shape[1] should be greater than 0 (got -28)"),
    ("input_rank_too_high.yaml", 2, 16, "input.shape should have at most 8 items, not 9"),
    ("bad_dtype.yaml", 2, 29, "input.dtype should be 'float32'"),
    # --- layers ---
    ("unknown_op_typo.yaml", 4, 5, "unknown op 'conv2'; did you mean 'conv2d'?"),
    ("unknown_op_bare.yaml", 5, 5, "unknown op 'rleu'; did you mean 'relu'?"),
    ("missing_colon.yaml", 4, 5, "unknown op 'linear {out_features'"),
    ("keras_dense.yaml", 4, 5, "unknown op 'Dense': that is the Keras and Flax name; dslc's is 'linear' "
                               "(linear: {out_features: N}); valid ops: linear: linear, identity, add_bias; "
                               "conv: conv2d"),
    ("torch_batchnorm_name.yaml", 5, 5, "unknown op 'nn.BatchNorm2d': that is the torch name; dslc's is "
                                        "'batch_norm2d'; valid ops: "),
    ("layer_two_ops.yaml", 4, 5, "each op is a name ('relu') or a mapping with one key"),
    ("args_not_mapping.yaml", 4, 13, "the arguments of linear must be a mapping"),
    ("unknown_layer_key.yaml", 4, 31, "unknown key 'kernal_size' for conv2d; did you mean 'kernel_size'?"),
    ("missing_required_param.yaml", 4, 13, "missing required key 'out_channels' in conv2d"),
    ("negative_out_features.yaml", 4, 28, "linear out_features should be greater than 0 (got -8)"),
    ("string_for_int.yaml", 4, 28, "linear out_features should be a valid integer (got '10')"),
    ("bool_for_int.yaml", 4, 28, "linear out_features should be a valid integer (got True)"),
    ("float_kernel.yaml", 4, 44, "kernel_size expected an integer or a list of two integers, got 2.5"),
    ("zero_kernel.yaml", 4, 44, "kernel_size values must be positive integers, got 0"),
    ("absurd_size.yaml", 4, 28, "should be less than or equal to 2147483647"),
    ("dropout_p_above_one.yaml", 4, 18, "dropout p should be less than or equal to 1"),
    ("batch_norm_momentum_above_one.yaml", 5, 30, "batch_norm2d momentum should be less than or equal to 1 (got 1.5)"),
    ("batch_norm_eps_zero.yaml", 5, 25, "batch_norm1d eps should be greater than 0 (got 0)"),
    ("bad_layer_name.yaml", 4, 37, "layer name '1st-layer' must be a Python-style identifier"),
    ("duplicate_layer_name.yaml", 6, 37, "layer name 'fc' is used more than once (first at line 4)"),
    # --- shapes ---
    ("article_cnn.yaml", 9, 27, "in_features is 1152 but its input has 5408 features"),
    ("in_features_mismatch.yaml", 5, 27, "in_features is 16 but its input has 8 features"),
    ("kernel_larger_than_input.yaml", 4, 44, "kernel extent 5 is larger than the padded input 4"),
    ("pool_larger_than_input.yaml", 5, 31, "kernel 4 does not fit the input (input shape [N, 8, 3, 3])"),
    ("groups_not_dividing.yaml", 4, 55, "in_channels (3) must be divisible by groups (2)"),
    ("same_padding_stride2.yaml", 4, 67, "padding 'same' needs stride 1"),
    ("conv_after_flatten.yaml", 5, 13, "expects input of shape [N, C, H, W], got [N, 784]; is a flatten misplaced?"),
    ("pool_on_flat_input.yaml", 4, 17, "expects input of shape [N, C, H, W], got [N, 784]; is a flatten misplaced?"),
    ("int_input_to_linear.yaml", 4, 13, "expects a floating-point input, got int64"),
    ("embedding_float_input.yaml", 4, 16, "embedding_1 (embedding): takes integer ids (int32 or int64), got float32"),
    ("embedding_bool_ids.yaml", 4, 16, "embedding_1 (embedding): takes integer ids (int32 or int64), got bool"),
    ("linear_on_scalar.yaml", 4, 13, "linear_1 (linear): expects input of shape [N, ..., features], got [N] (one "
                                     "value per example); give it a features axis first"),
    ("padding_idx_outside_table.yaml", 4, 69, "padding_idx 100 is outside the table of 100 rows (valid: -100..99)"),
    # --- tabular inputs: declared vocabularies, recommender ops ---
    ("vocab_float_input.yaml", 3, 22, "vocab declares the ids of an integer input (dtype: int64); this input is "
                                      "float32"),
    ("vocab_fields_mismatch.yaml", 3, 45, "vocab lists 2 sizes, one per field (the last axis), but the input's shape "
                                          "is [3]; give 3 sizes, or one size for all (vocab: N)"),
    ("vocab_list_for_one_id.yaml", 3, 42, "vocab lists 1 size, one per field (the last axis), but the input's shape "
                                          "is []; give one size (vocab: N)"),
    ("embedding_smaller_than_vocab.yaml", 5, 33, "embedding_1 (embedding): num_embeddings is 900, smaller than its "
                                                 "input's declared vocab 943: ids 900..942 would have no row; give "
                                                 "num_embeddings: 943"),
    ("embedding_reads_fields.yaml", 5, 33, "its input declares a vocab per field (2 sizes), but one table of "
                                           "num_embeddings rows would give field 0's id 5 and field 1's id 5 the "
                                           "same row; use field_embedding"),
    ("field_embedding_smaller_than_vocab.yaml", 5, 36, "vocab_sizes[1] is 15, smaller than its input's declared "
                                                       "vocab for field 1 (20)"),
    ("field_embedding_no_sizes.yaml", 5, 22, "field_embedding_1 (field_embedding): needs vocab_sizes, one table size "
                                             "per field, or a vocab: declared on its integer input"),
    ("table_reads_computed_ids.yaml", 7, 16, "embedding_1 (embedding) reads ids computed by pair (add), whose range "
                                             "is unknown: torch raises on an id outside the table and JAX clamps it"),
    ("bias_smaller_than_vocab.yaml", 5, 28, "bias_1 (bias): num_embeddings is 1000, smaller than its input's "
                                            "declared vocab 1682"),
    ("squeeze_not_size_one.yaml", 5, 20, "squeeze_1 (squeeze): dim 1 of [N, 2] has size 2, not 1"),
    ("sum_over_batch.yaml", 4, 16, "sum_1 (sum): dim 0 is out of range for input [N, 8] (valid: 1..1 or -1..-1; "
                                   "dim 0 is the batch)"),
    ("dot_shapes_differ.yaml", 6, 10, "dot_1 (dot): needs two inputs of one shape [N, ..., D] (no broadcasting), "
                                      "got [N, 8] and [N, 4]"),
    ("fm_interaction_flat_input.yaml", 4, 5, "fm_interaction_1 (fm_interaction): expects field embeddings [N, F, D], "
                                             "got [N, 26]"),
    # --- attention: the padding-mask convention is never guessed ---
    ("attention_mask_meaning_missing.yaml", 6, 35, "a padding-mask input needs mask: keep (nonzero marks a real token, "
                                                   "as Hugging Face's attention_mask) or mask: ignore"),
    ("attention_mask_without_input.yaml", 4, 79, "mask: keep describes a padding-mask input, but none is given"),
    ("attention_mask_bad_meaning.yaml", 6, 78, "mask should be 'keep' or 'ignore' (got 'padding')"),
    ("attention_float_mask.yaml", 6, 32, "takes the padding mask as int or bool (one flag per key), got float32"),
    ("attention_mask_length.yaml", 7, 27, "the padding mask must be [N, 5], one flag per key, got [N, 6]"),
    ("attention_decoder_one_mask.yaml", 7, 32, "takes [tgt, memory] or [tgt, memory, tgt_padding_mask, "
                                               "memory_padding_mask]; give both masks"),
    ("attention_heads_not_dividing.yaml", 4, 74, "heads 3 does not divide the 8 features; valid: 1, 2, 4, 8"),
    ("attention_causal_lengths.yaml", 6, 83, "causal: true needs as many keys as queries, got 6 queries and 5 keys"),
    ("attention_add_bias_kv.yaml", 4, 86, "add_bias_kv: true is not supported; leave it false (torch's default)"),
    ("attention_kdim.yaml", 6, 81, "kdim 12 differs from embed_dim 8: separate key and value sizes"),
    ("attention_d_model_mismatch.yaml", 4, 52, "d_model is 16 but its input has 8 features (shape [N, 6, 8])"),
    ("attention_unbatched_sequence.yaml", 4, 32, "expects input of shape [N, T, E] (batch first), got [N, 8]"),
    ("batch_norm2d_on_flat_input.yaml", 5, 5, "expects input of shape [N, C, H, W], got [N, 32]; batch_norm1d takes "
                                              "[N, C] and [N, C, L]"),
    ("batch_norm_num_features_mismatch.yaml", 5, 34, "num_features is 16 but its input has 8 channels"),
    ("softmax_dim_batch.yaml", 5, 20, "dim 0 is out of range for input [N, 8]"),
    ("absurd_input_shape.yaml", 2, 16, "has 10,000,000,000 values per example"),
    # sequence utilities; a padding mask's reading is required exactly when the mask input is given
    ("sequence_pool_mask_unread.yaml", 6, 20, "sequence_pool_1 (sequence_pool): has a mask input but no mask: "
                                              "argument; say how to read it: mask: keep (nonzero = real token"),
    ("sequence_pool_mask_without_input.yaml", 4, 39, "mask: keep reads a padding mask, but the layer has no mask "
                                                     "input"),
    ("sequence_pool_float_mask.yaml", 6, 20, "takes an int or bool padding mask, got float32"),
    ("select_batch_dim.yaml", 4, 19, "select_1 (select): dim 0 is out of range for input [N, 12, 8] (dim 0, the "
                                     "batch, stays)"),
    ("position_embedding_too_long.yaml", 5, 42, "the input [N, 128, 16] has 128 positions, more than the 64 rows "
                                                "of the table; raise num_embeddings to at least 128"),
    ("slice_empty.yaml", 4, 36, "slice_1 (slice): start 5, end -7 selects nothing from dim 1 of [N, 12, 8]"),
    ("sinusoidal_odd_features.yaml", 4, 5, "needs an even feature size E, got 7"),
    # --- the graph language: inputs, merges, outputs, blocks, expressions ---
    ("graph_add_one_input.yaml", 5, 5, "add takes at least 2 inputs, got 1 (reads linear_1)"),
    ("graph_block_arity.yaml", 9, 19, "block mlp takes 1 input (input), got 2 (reads a, b)"),
    ("graph_block_shadows_op.yaml", 4, 3, "block name 'linear' must be an identifier that is not an op's name"),
    ("graph_concat_dim_range.yaml", 5, 46, "dim 4 is out of range for input [N, 2, 4, 4]"),
    ("graph_cycle.yaml", 4, 40, "cycle: a -> b -> a (line 5)"),
    ("graph_dropped_shape.yaml", 9, 14, "shortcut is dropped by its if:, so it stands for its input input (in basic_1: "
                                        "block basic used at line 11)"),
    ("graph_duplicate_block_input.yaml", 5, 17, "input name 'x' is listed twice"),
    ("graph_duplicate_output.yaml", 5, 17, "output 'head' is listed twice"),
    ("graph_expr_call.yaml", 7, 32, "'int(width)' uses a function call"),
    ("graph_expr_float_for_int.yaml", 7, 32, "out_features should be a valid integer (got 4.5) (in mlp_1: block mlp"),
    ("graph_expr_type_error.yaml", 7, 32, "'width + wide': + takes numbers, got 8 and False"),
    ("graph_expr_unknown_name.yaml", 7, 32, "unknown name 'widht' in expression; did you mean 'width'?"),
    ("graph_expression_mid_text.yaml", 7, 32, "an expression is a whole value"),
    ("graph_if_not_bool.yaml", 8, 20, "if: ${extra} gives 1, not true or false"),
    ("graph_input_and_inputs.yaml", 3, 1, "give 'input' (one input) or 'inputs' (several), not both"),
    ("graph_int_input_linear.yaml", 6, 13, "linear_1 (linear): expects a floating-point input, got int64"),
    ("graph_later_reference.yaml", 5, 25, "add_1 reads 'fc2', which is defined later (line 6)"),
    ("graph_layer_named_like_input.yaml", 5, 37, "layer name 'image' is also the name of an input"),
    ("graph_merge_shapes.yaml", 5, 10, "got [N, 8] and [N, 4]; its inputs: wide [N, 8], input [N, 4]"),
    ("graph_missing_block_arg.yaml", 10, 5, "block mlp needs argument 'width' (it has no default)"),
    ("graph_recursive_block.yaml", 9, 9, "block a uses itself (a -> b -> a); blocks may not recurse"),
    ("graph_repeat_on_op.yaml", 4, 31, "repeat applies to block uses; linear is an op"),
    ("graph_repeat_zero.yaml", 7, 19, "repeat of mlp must be an integer from 1 to 1000"),
    ("graph_self_reference.yaml", 4, 49, "a reads 'a', the item it is part of (a cycle)"),
    ("graph_train_two_outputs.yaml", 8, 3, "output 'b' has no loss; give train.loss one per output (a, b)"),
    ("graph_undefined_reference.yaml", 5, 25, "add_1 reads 'fc2', which is not defined; names defined here before it: "
                                              "input, fc1"),
    ("graph_unknown_block_arg.yaml", 9, 11, "block mlp has no argument 'widht'; did you mean 'width'?"),
    ("graph_unknown_output.yaml", 5, 19, "output logits reads 'haed', which is not defined; did you mean 'head'?"),
    ("absurd_activation.yaml", 4, 13, "outputs [N, 512, 4096, 4096], more than 2,147,483,648 values"),
    ("too_many_parameters.yaml", 4, 13, "brings the model to 10,000,100,000 parameters"),
    # --- data and training ---
    ("bad_dataset.yaml", 7, 12, "unknown dataset 'mnsit'; did you mean 'mnist'?; valid datasets: digits, mnist"),
    ("unknown_loss.yaml", 6, 9, "unknown loss 'cross_entropi'; did you mean 'cross_entropy'?"),
    ("keras_loss.yaml", 6, 9, "unknown loss 'categorical_crossentropy': that is the Keras name; dslc's is "
                              "'cross_entropy'; it takes logits and class ids"),
    ("unknown_metric.yaml", 8, 23, "unknown metric 'acc': that is the Keras name; dslc's is 'accuracy'; "
                                   "valid metrics: accuracy"),
    ("unknown_optimizer_key.yaml", 7, 54, "unknown key 'weight_decy' for adam; did you mean 'weight_decay'?"),
    ("nesterov_without_momentum.yaml", 8, 10, "nesterov needs momentum > 0"),
    ("nan_lr.yaml", 7, 26, "adam lr should be a finite number"),
    ("accuracy_with_mse.yaml", 8, 12, "accuracy needs a classification loss"),
    ("dataset_shape_mismatch.yaml", 7, 12, "dataset digits has examples of shape [N, 1, 8, 8] but input.shape is"),
    ("normalize_wrong_length.yaml", 8, 21, "normalize.mean has 3 values; the input has 1 channel, so give 1 value"),
    ("classes_mismatch.yaml", 7, 12, "dataset digits has 10 classes but the model outputs [N, 5]"),
    ("train_size_too_large.yaml", 8, 15, "data.train_size is 100,000 but dataset digits has 1,437 train examples"),
    ("mse_on_class_labels.yaml", 9, 9, "mse takes float targets shaped like the output [N, 10], but dataset digits "
                                       "yields class ids (int64, one per example); use cross_entropy"),
    ("bce_on_class_labels.yaml", 10, 9, "bce_with_logits takes float targets shaped like the output [N, 1], but "
                                        "dataset mnist yields class ids (int64, one per example); use cross_entropy, "
                                        "which takes logits [N, 10]"),  # the loss, given after the optimizer
    ("cross_entropy_spatial_output.yaml", 7, 12, "so cross_entropy needs logits [N, 10], but the model outputs "
                                                 "[N, 10, 4, 4]; reduce the extra axes"),
    ("npz_without_path.yaml", 6, 12, "dataset npz reads your files: add data.path, an .npz file holding x_train"),
    ("path_on_cifar10.yaml", 8, 9, "data.path is where datasets npy, npz, image_folder, text_classification, "
                                      "parallel_text, criteo find their files"),
    ("image_folder_two_channels.yaml", 7, 12, "with 1 (grayscale) or 3 (RGB) channels; input.shape is [N, 2, 16, 16]"),
    # --- datasets that name their columns (data.columns), text and its tokenizer ---
    ("columns_unknown_column.yaml", 10, 13, "dataset planted_tokens has no column 'input_id'; did you mean "
                                            "'input_ids'?; its columns: input_ids, attention_mask"),
    ("columns_not_an_input.yaml", 10, 39, "maps label to 'topics', which is neither an input nor an output of the "
                                          "model; did you mean 'topic'?; inputs: tokens; outputs: topic"),
    ("columns_on_image_dataset.yaml", 8, 3, "dataset digits feeds the model's one input and its one output: remove "
                                            "data.columns"),
    ("sequence_input_without_column.yaml", 9, 12, "output 'linear_1' gets no column from dataset planted_tokens "
                                                  "(its columns: input_ids, attention_mask, token_type_ids, label); "
                                                  "map one to it, as data.columns: {label: linear_1}"),
    ("sequence_ids_to_float_input.yaml", 9, 24, "dataset planted_tokens's input_ids are token ids [L] (integers), "
                                                "but input input_ids is float32 [N, 16, 4]"),
    ("text_without_tokenizer.yaml", 9, 12, "dataset text_classification reads text: add data.tokenizer (char, "
                                           "vocab, or file: tokenizer.json)"),
    ("tokenizer_unknown.yaml", 11, 15, "unknown tokenizer 'vocabulary'; valid tokenizers: char, vocab, file"),
    ("tokenizer_vocab_larger_than_table.yaml", 11, 33, "max_size 1000 gives ids up to 1003 (after the 4 reserved "
                                                       "ids), but the table reading input_ids has 1000 rows; give at "
                                                       "most 996"),
    ("tokenizer_on_synthetic_task.yaml", 10, 3, "dataset planted_tokens makes its own ids: remove it"),
    ("augment_unknown.yaml", 8, 40, "augmentation 'RandomHorizontalFlip': that is the torchvision name"),  # item 2
    ("augment_crop_too_large.yaml", 9, 39, "random_crop of size [48, 32] is larger than the padded input [40, 40]"),
    ("augment_flat_input.yaml", 7, 3, "[C, H, W]; this model reads input [N, 64]"),  # the augment: key
    ("augment_flip_probability.yaml", 8, 34, "horizontal_flip p should be less than or equal to 1 (got 1.5)"),
    # --- several models (models:) and objectives ---
    ("models_and_model.yaml", 7, 1, "give the model at the top (input, model) or several under models:, not both; "
                                    "move 'model' into a model"),  # the top-level model: key
    ("models_empty.yaml", 2, 9, "models should have at least 1 item"),
    ("models_missing_model.yaml", 4, 5, "missing required key 'model' in models.generator"),  # the model's mapping
    ("models_no_input.yaml", 4, 5, "missing required key 'input' (one input) or 'inputs' (several, by name)"),
    ("models_input_and_inputs.yaml", 5, 5, "give 'input' (one input) or 'inputs' (several), not both"),
    ("models_unknown_key.yaml", 7, 5, "unknown key 'ouputs' in models.generator"),
    ("models_output_named_like_input.yaml", 8, 27, "output 'image' has the name of an input; batches name targets "
                                                   "by output and inputs by input, so rename one"),  # the key
    ("models_cross_reference.yaml", 10, 45, "decoder.linear_1 reads 'code', which is not defined; names defined "
                                            "here before it: input"),  # models do not see each other's values
    ("models_unflatten_size.yaml", 7, 47, "generator.unflatten_1 (unflatten): unflattened_size [1, 8, 8] holds 64 "
                                          "values, but dim 1 of the input [N, 60] has 60"),
    ("models_unflatten_dim_range.yaml", 4, 22, "unflatten_1 (unflatten): dim 2 is out of range for input [N, 64]"),
    ("reshape_size.yaml", 5, 22, "reshape_1 (reshape): shape [1, 8, 8] holds 64 values per example, but the input "
                                 "[N, 60] holds 60"),
    ("reshape_count.yaml", 4, 22, "reshape_1 (reshape): shape [7, -1] cannot hold the 60 values per example of the "
                                  "input [N, 3, 4, 5]: 60 is not a multiple of 7"),
    ("permute_moves_batch.yaml", 5, 21, "permute_1 (permute): dims [1, 0, 2, 3] moves the batch: dim 0 must stay "
                                        "first"),
    ("permute_not_a_permutation.yaml", 4, 21, "permute_1 (permute): dims [0, 2, 2] is not a permutation of 0..2: "
                                              "each dim must appear once"),
    ("objective_gan_unknown_model.yaml", 12, 32, "objective gan: the generator 'genrator' is not a model of this spec "
                                                 "(models: generator, discriminator); define it under models:"),
    ("objective_gan_block_unknown_discriminator.yaml", 15, 22, "objective gan: the discriminator 'critic' is not a "
                                                               "model of this spec"),
    ("objective_gan_default_roles_missing.yaml", 12, 14, "the generator 'generator' is not a model of this spec "
                                                         "(models: g, d)"),  # the defaults, at the objective
    ("objective_gan_one_model.yaml", 6, 14, "objective gan: the generator 'generator' is not a model of this spec "
                                            "(it has one model, at the top)"),
    ("objective_gan_same_model.yaml", 12, 62, "objective gan: the generator and the discriminator must be two models; "
                                             "both are 'discriminator'"),
    ("objective_gan_unknown_key.yaml", 13, 11, "unknown key 'generater' for gan; did you mean 'generator'?"),
    ("objective_supervised_several_models.yaml", 12, 14, "objective supervised trains one model; this spec has 2 "
                                                         "(encoder, decoder)"),
    ("objective_supervised_no_loss.yaml", 5, 1, "objective supervised needs train.loss (loss: cross_entropy, or one "
                                                "per output: {name: loss})"),  # the train: key
    ("objective_loss_unknown_output.yaml", 9, 32, "train.loss names 'valeu', which is not an output; did you mean "
                                                  "'value'?; outputs: label, value"),
    ("objective_loss_missing_output.yaml", 9, 3, "output 'value' has no loss; give train.loss one per output "
                                                 "(label, value)"),
    ("objective_loss_mapping_unknown_loss.yaml", 9, 39, "unknown loss 'mae'; valid losses: "),
    ("objective_loss_weights_unknown_output.yaml", 10, 30, "train.loss_weights names 'class_head', which is not an "
                                                           "output; outputs: label, value"),
    ("objective_loss_weight_negative.yaml", 10, 37, "train.loss_weights.value should be greater than or equal to 0 "
                                                    "(got -0.5)"),
    ("objective_metrics_unknown_output.yaml", 10, 13, "train.metrics names 'labels', which is not an output; did "
                                                      "you mean 'label'?; outputs: label, value"),
    ("objective_metrics_mapping_not_list.yaml", 7, 17, "metrics are a list of names ([accuracy]); got 'accuracy'"),
    ("objective_optimizer_unknown_model.yaml", 15, 5, "train.optimizer names 'discriminater', which is not a trained "
                                                      "model; did you mean 'discriminator'?"),
    ("objective_optimizer_missing_model.yaml", 13, 3, "train.optimizer has no entry for model 'discriminator'; give "
                                                       "one per model (discriminator, generator) or one for all"),
    ("objective_optimizer_mapping_one_model.yaml", 7, 3, "train.optimizer is a mapping by model, but this spec has "
                                                         "one model: give one optimizer"),
    ("sparse_embedding_with_adam.yaml", 5, 63, "user_table has sparse: true, and optimizer adam cannot take its "
                                               "sparse gradient (torch raises); use optimizer sparse_adam"),
    ("sparse_embedding_with_sgd_momentum.yaml", 6, 25, "embedding_1 has sparse: true, and optimizer sgd with "
                                                       "momentum cannot take its sparse gradient"),
    ("unused_layer_weights.yaml", 4, 5, "aux (linear) has weights, but no output depends on its values, so they "
                                        "would never train (torch gives them no gradient)"),
    ("weights_before_position_embedding.yaml", 4, 5, "lstm_1 (lstm) has weights, but no output depends on its "
                                                     "values"),  # position_embedding reads its input's T only
    ("no_trainable_weights.yaml", 7, 3, "the model has no trainable weights, so the optimizer has nothing to train"),
    ("sparse_adam_without_sparse_embedding.yaml", 10, 14, "optimizer sparse_adam updates the looked-up rows of sparse "
                                                          "embedding tables, and this model has none"),
    # --- schedules, warmup, clipping, no_decay ---
    ("schedule_unknown_key.yaml", 10, 23, "unknown key 'Tmax' for cosine; did you mean 'T_max'?"),
    ("schedule_missing_step_size.yaml", 10, 20, "missing required key 'step_size' in step"),
    ("schedule_bad_interval.yaml", 10, 44, "cosine interval should be 'step' or 'epoch' (got 'batch')"),
    ("schedule_milestones_decreasing.yaml", 10, 25, "milestones must be increasing (torch's MultiStepLR), got "
                                                    "[30, 10]"),
    ("warmup_counts_other_interval.yaml", 11, 12, "the warmup counts steps, and schedule cosine steps once per epoch "
                                                  "(interval: epoch): they step together, as torch's SequentialLR; "
                                                  "give warmup: {epochs: N}, or interval: step in cosine"),
    ("warmup_without_length.yaml", 10, 11, "give the warmup's length as steps: N (optimizer steps) or epochs: N"),
    ("warmup_start_factor_zero.yaml", 10, 37, "warmup start_factor should be greater than 0 (got 0)"),
    ("one_cycle_with_lr.yaml", 9, 23, "one_cycle sets the learning rate from max_lr (torch's OneCycleLR overwrites "
                                      "the optimizer's lr with max_lr / div_factor); drop lr from adamw"),
    ("no_decay_matches_nothing.yaml", 9, 64, "no_decay pattern '*.LayerNorm.*' matches none of the weights of the "
                                             "model (linear_1.weight, linear_1.bias, layer_norm_1.weight"),
    ("no_decay_without_weight_decay.yaml", 9, 21, "no_decay exempts weights from weight_decay, which is 0 here"),
    ("clip_norm_and_value.yaml", 11, 3, "give clip_grad_norm or clip_grad_value, not both"),
    ("clip_grad_norm_zero.yaml", 10, 19, "train.clip_grad_norm should be greater than 0 (got 0)"),
    ("clip_value_sparse_embedding.yaml", 11, 3, "clip_grad_value clamps every gradient, and user_table has sparse: "
                                                "true: torch's clip_grad_value_ cannot clamp a sparse gradient"),
    ("objective_reconstruction_shape.yaml", 8, 14, "objective reconstruction: the output [N, 8] must have the "
                                                   "input's shape [N, 16]"),
    ("objective_reconstruction_cross_entropy.yaml", 9, 9, "objective reconstruction compares the output with the "
                                                          "input: give train.loss mse"),  # the loss value
    ("objective_reconstruction_no_loss.yaml", 6, 14, "objective reconstruction compares the output with the input: "
                                                     "give train.loss mse"),
    ("objective_reconstruction_two_outputs.yaml", 8, 14, "objective reconstruction needs a model with one input and "
                                                         "one output; this one has 1 and 2"),
    ("objective_unknown_name.yaml", 12, 14, "unknown objective 'wgan'; did you mean 'gan'?; valid objectives: "
                                            "supervised, reconstruction, gan"),
    ("objective_gan_shape_mismatch.yaml", 6, 9, "objective gan: the generator outputs [N, 32] but the discriminator "
                                                "reads [N, 16]; they must match"),
    ("objective_gan_discriminator_logits.yaml", 10, 9, "objective gan: the discriminator must output one logit per "
                                                       "example ([N, 1]); it outputs [N, 2]"),
    ("objective_gan_int_noise.yaml", 4, 37, "objective gan: the generator's input is its noise, so it must be float, "
                                            "not int64"),
    ("objective_gan_discriminator_two_outputs.yaml", 7, 3, "objective gan: the discriminator needs one input and one "
                                                           "output; 'discriminator' has 1 and 2"),
    ("objective_metrics_accuracy_on_mse.yaml", 10, 39, "accuracy needs a classification loss (cross_entropy or "
                                                       "bce_with_logits), not mse (output 'value')"),
    ("graph_output_index_range.yaml", 5, 24, "'chunk_1[2]': chunk_1 (chunk) has 2 outputs (chunk_1[0], chunk_1[1])"),
    ("graph_output_index_on_input.yaml", 5, 21, "'input[1]': input (a model input) has one value; [k] picks an "
                                                "output of a layer with several"),
    ("graph_output_index_not_number.yaml", 5, 17, "'halves[last]': halves (chunk) numbers its outputs, it does not "
                                                  "name them: halves[0], halves[1]"),
    ("graph_output_index_negative.yaml", 5, 17, "'halves[-1]': the part in [...] must be an output's index or name"),
    ("graph_output_name_unknown.yaml", 5, 24, "'lstm_1[hn]': lstm_1 (lstm) has no output 'hn'; did you mean 'h_n'?; "
                                              "its outputs are output, h_n, c_n (lstm_1[0], lstm_1[1], lstm_1[2])"),
    ("graph_output_name_gru_c_n.yaml", 5, 18, "'gru_1[c_n]': gru_1 (gru) has no output 'c_n'; its outputs are "
                                              "output, h_n"),
    ("graph_output_name_unquoted.yaml", 5, 30, "inside [...] or {...}, quote it: \"lstm_1[h_n]\""),
    ("graph_output_index_unquoted.yaml", 5, 31, "inside [...] or {...}, quote it: \"chunk_1[1]\""),
    ("graph_chunk_uneven.yaml", 4, 21, "dim 1 of [N, 6] has 6, which 4 chunks do not divide (torch.chunk would "
                                       "return fewer or uneven parts)"),
    # --- recurrent layers ---
    ("lstm_batch_first_false.yaml", 4, 41, "lstm_1 (lstm): batch_first: false is not supported: dslc sequences are "
                                           "batch first everywhere ([N, T, features])"),
    ("lstm_proj_size.yaml", 4, 39, "lstm_1 (lstm): proj_size is not supported"),
    ("gru_dropout_one_layer.yaml", 4, 36, "gru_1 (gru): dropout 0.2 does nothing with num_layers: 1"),
    ("lstm_input_size_mismatch.yaml", 4, 40, "lstm_1 (lstm): input_size is 5 but its input has 3 features"),
    ("lstm_flat_input.yaml", 4, 11, "lstm_1 (lstm): expects a batch-first sequence of shape [N, T, features], "
                                    "got [N, 8]"),
    ("gru_token_ids.yaml", 4, 10, "gru_1 (gru): expects a float sequence [N, T, features], got int64 [N, 6]; "
                                  "token ids go through an embedding first"),
    ("lstm_no_hidden_size.yaml", 4, 5, "missing required key 'hidden_size' in lstm"),
    # --- sequence losses, metrics and padding-mask inputs ---
    ("loss_class_axis_2.yaml", 7, 38, "cross_entropy class_axis must be 1 (torch's layout [N, C, d1, ...]) or -1 "
                                      "(classes last, [N, T, V]), got 2"),
    ("ctc_on_flat_output.yaml", 6, 9, "ctc takes logits [N, T, C] (batch first: frames, then classes with the "
                                      "blank); linear_1 is [N, 10]"),
    ("ctc_input_lengths_no_column.yaml", 8, 31, "ctc input_lengths names column 'frame_lengths', which dataset "
                                                "digits does not yield (it yields only its input and its label)"),
    ("ctc_input_lengths_names_input.yaml", 8, 41, "ctc input_lengths names 'frame_count', a model input; it reads "
                                                  "one int per example from a column of its own"),
    ("ctc_blank_outside_classes.yaml", 6, 23, "ctc on linear_1 [N, 20, 5]: blank 5 is not one of its 5 classes"),
    ("accuracy_with_ctc.yaml", 8, 12, "accuracy needs a classification loss (cross_entropy or bce_with_logits), "
                                      "not ctc"),
    ("perplexity_with_bce.yaml", 8, 12, "perplexity needs cross_entropy (it is exp of the mean cross entropy per "
                                        "token), not bce_with_logits"),
    ("auc_with_cross_entropy.yaml", 8, 12, "auc needs bce_with_logits: it scores logits against 0/1 labels, not "
                                           "cross_entropy"),
    ("rmse_with_bce.yaml", 8, 12, "rmse needs a regression loss (mse): it compares float predictions with float "
                                  "targets, not bce_with_logits"),
    ("logloss_with_mse.yaml", 11, 44, "logloss needs bce_with_logits: it scores logits against 0/1 labels, not mse "
                                      "(output 'rating')"),  # the rating list, not the click one
    ("auc_on_several_logits.yaml", 8, 12, "auc ranks one score per example: it needs one logit each (an output [N] "
                                          "or [N, 1]); tags is [N, 3]"),
    ("mask_on_float_input.yaml", 4, 39, "a padding mask is int or bool ([N, T], nonzero marks a real token); this "
                                        "input is float32: give dtype: int64 or bool"),
    ("mask_not_one_axis.yaml", 4, 27, "a padding mask is [N, T], one flag per position: give shape [T], not [16, 16]"),
    ("mask_unknown_kind.yaml", 4, 53, "inputs.attention_mask.mask should be 'keep' or 'ignore' (got 'padding')"),
    # --- decode: ---
    ("decode_unknown_tokens.yaml", 9, 20, "decode.greedy.tokens 'target' is not a model input; did you mean "
                                          "'target_in'?; inputs: source, target_in"),
    ("decode_output_not_sequence.yaml", 9, 11, "decode reads scores [N, T, classes] from 'logits', which is [N, 12]; "
                                               "decode a per-position output"),
    ("decode_metrics_without_reference.yaml", 7, 3, "decode.metrics need reference: the batch column holding the "
                                                    "true sequences"),
    ("decode_greedy_and_ctc.yaml", 7, 3, "decode gives greedy and ctc; give exactly one decoder"),
    ("decode_reference_not_a_column.yaml", 11, 14, "decode.reference 'target' is not a column of dataset reverse; "
                                                   "did you mean 'target_in'?"),
    # --- init: (per layer, by op) ---
    ("init_unknown_weight.yaml", 4, 54, "conv2d has no weight 'wieght'; did you mean 'weight'?; its weights: "
                                        "weight, bias"),
    ("init_unknown_initializer.yaml", 7, 23, "unknown initializer 'kaiming_norml'; did you mean 'kaiming_normal'?; "
                                             "valid initializers: zeros, ones, constant, normal, uniform"),
    ("init_keras_name.yaml", 4, 46, "unknown initializer 'he_normal': that is the Keras name; dslc's is "
                                    "'kaiming_normal'"),
    ("init_bad_argument.yaml", 4, 86, "kaiming_normal mode should be 'fan_in' or 'fan_out' (got 'fan_avg')"),
    ("init_unknown_argument.yaml", 4, 56, "unknown key 'stddev' for normal; valid keys: mean, std"),
    ("init_uniform_reversed.yaml", 4, 54, "uniform: needs a <= b, got a=1.0, b=-1.0"),
    ("init_trunc_normal_outside.yaml", 4, 61, "trunc_normal: [a, b] = [1.0, 2.0] holds 0 of N(0.0, 0.02²); put "
                                              "a < mean < b"),
    ("init_on_buffer.yaml", 5, 41, "running_mean is a buffer of batch_norm2d (running statistics, set by the "
                                   "forward pass), not a weight to initialize; batch_norm2d's weights: weight, bias"),
    ("init_op_without_weights.yaml", 5, 12, "relu has no weights to initialize"),  # the init: key
    ("init_not_by_weight.yaml", 4, 37, "init of linear maps weight names to initializers (init: {weight: "
                                       "{normal: {std: 0.02}}}); got 'zeros'"),
    ("init_no_bias.yaml", 4, 103, "conv1 (conv2d) has no bias with these arguments (its weights: weight)"),
    ("init_fan_of_bias.yaml", 4, 42, "conv1.bias: kaiming_normal computes fan_in and fan_out, which need a weight "
                                     "of 2 or more dims (torch's rule); this one has shape [4]"),  # the by-op entry
    ("init_by_op_unknown_op.yaml", 5, 3, "unknown op 'batchnorm2d'"),
    ("init_by_op_no_weights.yaml", 3, 8, "relu has no weights to initialize"),
    ("init_by_op_unknown_weight.yaml", 5, 27, "batch_norm1d has no weight 'weigth'; did you mean 'weight'?"),
    # --- the validation split and early stopping ---
    ("early_stopping_without_validation.yaml", 11, 3, "early_stopping watches a validation metric, and this spec "
                                                      "has no validation split; add data: {validation_split: 0.1}"),
    ("early_stopping_unknown_monitor.yaml", 13, 29, "monitor 'val_acc' is not a validation metric this run records "
                                                    "(val_loss, val_accuracy); did you mean 'val_accuracy'?"),
    ("early_stopping_on_test_split.yaml", 13, 29, "monitor 'test_accuracy' would choose by the test split, which "
                                                  "must stay unseen; monitor the validation split: val_accuracy"),
    ("validation_split_not_on_disk.yaml", 8, 15, "dataset digits keeps no split named 'val' (only npy, npz, "
                                                 "image_folder read one from your files); carve one off the "
                                                 "training split: validation_split: 0.1"),
    ("validation_two_ways.yaml", 10, 3, "give one validation split: validation_split carves a fraction off the "
                                        "training split, validation names one on disk; drop one of them"),
    ("validation_is_test_split.yaml", 9, 15, "validation: test: the test split is never used to choose anything"),
    ("validation_split_leaves_nothing.yaml", 9, 21, "validation_split 0.9 of 3 training examples takes 3, leaving "
                                                    "none to train on"),
    ("validation_split_whole.yaml", 8, 21, "data.validation_split should be less than 1 (got 1)"),
    ("validation_split_on_stream.yaml", 10, 21, "data.stream reads the training files in place, so no fraction is "
                                                "carved off them; put the validation examples in data.path/val/"),
    ("validation_on_gan.yaml", 15, 3, "a gan's losses (d_loss, g_loss) do not say which epoch's generator is better"),
]

IDS = [case[0] for case in CASES]


def test_every_file_is_checked():
    files = sorted(p.name for p in BAD.iterdir() if p.is_file())
    assert len(files) >= 25
    assert len(IDS) == len(set(IDS)), "a file is listed twice in CASES"
    assert sorted(IDS) == files, "every file in tests/bad_specs needs exactly one row in CASES"


RUNNER = """
import contextlib, io, json, sys
import cli
results = {}
for path in sys.argv[1:]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(["validate", path])
        except SystemExit as stop:
            code = stop.code
    results[path] = [code, out.getvalue(), err.getvalue()]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def validated() -> dict[str, list]:
    """``dslc validate`` on every corpus file, in one process (one interpreter start, not 130)."""
    paths = [f"tests/bad_specs/{name}" for name in IDS]
    result = subprocess.run([sys.executable, "-c", RUNNER, *paths], cwd=REPO, capture_output=True, text=True,
                            timeout=600, check=True)
    return json.loads(result.stdout)


@pytest.mark.parametrize("name, line, col, fragment", CASES, ids=IDS)
def test_cli_reports_one_located_line(validated, name, line, col, fragment):
    path = f"tests/bad_specs/{name}"
    code, stdout, stderr = validated[path]
    assert code == 2, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    assert stderr.endswith("\n") and stderr.count("\n") == 1, repr(stderr)
    assert stderr.startswith(f"{path}:{line}:{col}: "), stderr
    assert fragment in stderr, stderr


def test_one_corpus_file_through_the_installed_command_line():
    """The batch above calls ``cli.main``; this one goes through a fresh process exactly as a user's shell does."""
    result = subprocess.run([sys.executable, "cli.py", "validate", "tests/bad_specs/article_cnn.yaml"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.startswith("tests/bad_specs/article_cnn.yaml:9:27: ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("name, line, col, fragment", CASES, ids=IDS)
def test_load_raises_located_spec_error(name, line, col, fragment):
    path = BAD / name
    with pytest.raises(dsl.SpecError) as info:
        dsl.load(path)
    err = info.value
    assert err.location is not None
    assert (err.location.file, err.location.line, err.location.col) == (str(path), line, col), str(err)
    assert fragment in str(err)


def test_python_tag_runs_nothing():
    """The corpus's os.system payload is refused before anything is constructed."""
    marker = REPO / "dslc_pwned"
    assert not marker.exists()
    with pytest.raises(dsl.SpecError):
        dsl.load(BAD / "python_tag.yaml")
    subprocess.run([sys.executable, "cli.py", "validate", "tests/bad_specs/python_tag.yaml"], cwd=REPO,
                   capture_output=True, timeout=60)
    assert not marker.exists()


def test_article_cnn_fails_on_the_linear_naming_both_sizes():
    """The article's hard-coded in_features 1152 against the real 32·13·13 = 5408."""
    lines = (BAD / "article_cnn.yaml").read_text().splitlines()
    with pytest.raises(dsl.SpecError) as info:
        dsl.load(BAD / "article_cnn.yaml")
    err = info.value
    assert lines[err.location.line - 1].strip().startswith("- linear: {in_features: 1152")
    assert lines[err.location.line - 1][err.location.col - 1:].startswith("1152")
    assert "1152" in err.message and "5408" in err.message
