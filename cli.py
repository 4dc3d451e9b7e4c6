"""``dslc``: the command line. It parses arguments and calls library functions, nothing more."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import warnings
from pathlib import Path

EXIT_USAGE = 2
DEVICES = ("cpu", "cuda", "auto")  # backends/precision.py's, here without importing the backends
PRECISIONS = ("float32", "bf16")
EXPORT_FORMATS = ("onnx", "stablehlo", "torch-export")  # backends/export.py's FORMATS, without importing it


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the verb's own parser, so the hint is that verb's usage, not the top level's
        args.parser.error(_unrecognized(args.parser, extra))
    from dsl import DslcError

    warnings.showwarning = _show_warning
    try:
        if args.verb in _COMPUTE_VERBS:  # --threads, or by default the cores this process may use
            from backends.threads import use_threads

            use_threads(args.threads)  # before torch or JAX is imported
            if args.verb == "train":
                from backends.host_devices import use_host_devices

                use_host_devices(args.devices)  # XLA's CPU platform: --devices N needs N devices before JAX starts
            _check_device(args)
        return args.run(args) or 0
    except DslcError as err:
        print(f"error: {err}" if not getattr(err, "location", None) else str(err), file=sys.stderr)
        return err.exit_status  # 2, or 1 for a run that diverged (its spec and command were valid)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _check_device(args) -> None:
    """``--device cuda`` where the framework has no GPU: refused before a spec, weights or data are read."""
    from backends.target import TARGETS, check_device

    if getattr(args, "device", "auto") != "auto" and (args.verb == "check" or args.target):
        for name in TARGETS if args.verb == "check" else (args.target,):
            check_device(name, args.device)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """One line per warning: a located spec warning as ``file:line:col: warning: ...``, others ``warning: ...``."""
    text = str(message)
    print(text if getattr(message, "location", None) else f"warning: {text}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors that name the verb and point at its ``--help``.

    Abbreviated flags are off: ``--epoch 3`` silently meant ``--epochs 3``, and
    whether ``--o`` is ``--out`` or ``--overwrite`` should never depend on which flags exist.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _unrecognized(parser: argparse.ArgumentParser, extra: list[str]) -> str:
    flags = [flag for action in parser._actions for flag in action.option_strings]
    unknown = next((word.split("=")[0] for word in extra if word.startswith("-")), None)
    close = difflib.get_close_matches(unknown, flags, n=1, cutoff=0.6) if unknown else []
    return f"unrecognized arguments: {' '.join(extra)}" + (f"; did you mean {close[0]}?" if close else "")


def _validate(args) -> None:
    import dsl

    spec, graph = dsl.load(args.spec)
    print(f"{args.spec}: ok ({spec.name}: {len(graph.nodes)} layers, {graph.num_parameters:,} parameters)")


def _summary(args) -> None:
    import dsl
    from dsl.summary import print_summary

    print_summary(dsl.load(args.spec)[1])


def _schema(args) -> None:
    import dsl

    print(json.dumps(dsl.json_schema(), indent=2))


def _train(args) -> None:
    import dsl
    from backends import scale
    from backends.progress import format_rate
    from backends.world import World

    if args.resume is not None:
        spec, graph, options, checkpoint = _resume(args)
        if World.from_env().writes:
            print(f"resuming {args.resume} at step {checkpoint.position.step:,} of {checkpoint.run.total_steps:,}",
                  flush=True)
    else:
        if args.spec is None:
            args.parser.error("the following arguments are required: spec (or --resume RUN_DIR)")
        spec, graph = dsl.load(args.spec)
        options, checkpoint = _train_options(args), None
    workers = scale.torch_workers(options.target, args.nproc, checkpoint.run.world_size if checkpoint else None)
    summary = scale.train(spec, graph, options, checkpoint, workers, args.threads)
    if summary is None:  # a data-parallel run's rank other than 0
        return
    tests = "  ".join(f"{k} {v:.4f}" for k, v in sorted(summary.items(), key=lambda kv: "loss" in kv[0])
                      if k.startswith("test_"))
    print(f"{tests}  {format_rate(summary['train_samples_per_sec'])}  compile {summary['compile_seconds']:.1f}s  "
          f"wall {summary['wall_seconds']:.1f}s  -> {summary['out']}")
    if summary.get("best_epoch") is not None:
        stopped = f"stopped early after epoch {summary['stopped_epoch']}; " if summary["stopped_early"] else ""
        print(f"{stopped}best epoch {summary['best_epoch']}: {summary['monitor']} {summary['best_value']:.4f}  -> "
              f"{Path(summary['out']) / 'best.safetensors'}")


def _train_options(args):
    from backends import scale
    from backends.loop import TrainOptions
    from dsl import DslcError

    target = args.target or "jax"
    if args.compile and target != "torch":
        raise DslcError("--compile applies to --target torch (the JAX step is always jit-compiled)")
    target_options = {"device": args.device, **({"compile": True} if args.compile else {}),
                      **scale.jax_devices(target, args.devices)}
    return TrainOptions(target=target, epochs=args.epochs, max_steps=args.max_steps,
                        batch_size=args.batch_size, lr=args.lr, seed=args.seed or 0, out_dir=args.out,
                        overwrite=args.overwrite, data_dir=args.data_dir or Path("data"), dataset=args.dataset,
                        progress=args.progress, disabled_passes=args.no_optimize, target_options=target_options,
                        world=_jax_world(args, target), precision=args.precision,
                        checkpoint_every=args.checkpoint_every, spec_path=Path(args.spec),
                        spec_text=Path(args.spec).read_bytes().decode())


def _jax_world(args, target: str):
    from backends import scale

    return scale.jax_world(target, args.coordinator, args.num_processes, args.process_id)


_RUN_FLAGS = ("target", "epochs", "max_steps", "batch_size", "lr", "seed", "out", "overwrite", "dataset",
              "no_optimize", "compile", "precision", "devices")
"""``train`` flags that decide a run's numbers: a resumed run keeps the ones it started with."""


def _resume(args):
    """Spec, graph, options and checkpoint (with its tensors) of the run in ``--resume``; refuses early."""
    import dsl
    from backends.checkpoint import check_resumable, check_spec, read_checkpoint
    from backends.loop import TrainOptions
    from dsl import UsageError

    given = [f"--{name.replace('_', '-')}" for name in _RUN_FLAGS
             if getattr(args, name) is not None and getattr(args, name) is not False and getattr(args, name) != ()]
    if given:
        raise UsageError(f"--resume continues a run with the options it started with; drop {', '.join(given)}")
    header = read_checkpoint(args.resume)
    check_resumable(header, args.resume)
    text, file = check_spec(header, args.resume, args.spec)
    spec, graph = dsl.loads(text, file)
    run = header.run
    from backends.host_devices import use_host_devices

    use_host_devices(run.target_options.get("devices"))  # the run's own device count, before JAX starts
    options = TrainOptions(target=run.target, epochs=run.epochs, max_steps=run.max_steps, batch_size=run.batch_size,
                           lr=run.lr, seed=run.seed, out_dir=args.resume, data_dir=args.data_dir or Path(run.data_dir),
                           dataset=run.dataset, progress=args.progress, disabled_passes=run.disabled_passes,
                           target_options={**run.target_options, "device": args.device}, precision=run.precision,
                           checkpoint_every=args.checkpoint_every or run.checkpoint_every,
                           spec_path=Path(args.spec or run.spec_path), spec_text=text,
                           world=_jax_world(args, run.target))
    return spec, graph, options, read_checkpoint(args.resume, tensors=True)


def _eval(args) -> None:
    import dsl
    from backends.decoding_run import evaluate
    from backends.weights import load_weights

    spec, graph = dsl.load(args.spec)
    result = evaluate(spec, graph, args.target, load_weights(args.weights, graph), data_dir=args.data_dir,
                      dataset=args.dataset, batch_size=args.batch_size, device=args.device)
    print(json.dumps(result))


def _predict(args) -> None:
    import dsl
    from backends.predict import predict_file

    spec, graph = dsl.load(args.spec)
    y = predict_file(spec, graph, args.target, args.weights, args.input, args.output, transformed=args.transformed,
                     batch_size=args.batch_size, model=args.model, device=args.device)
    arrays = y.items() if isinstance(y, dict) else [("", y)]
    print(f"wrote {args.output}: " + ", ".join(f"{name} {list(a.shape)} {a.dtype}".strip() for name, a in arrays))


def _decode(args) -> None:
    import dsl
    from backends.decoding_run import decode_file, require_decode

    spec, graph = dsl.load(args.spec)
    require_decode(spec)
    sequences = decode_file(spec, graph, args.target, args.weights, args.input, args.output,
                            batch_size=args.batch_size, device=args.device)
    if args.output is None:
        print("\n".join(" ".join(map(str, s)) for s in sequences))
    else:
        count, longest = len(sequences), max(map(len, sequences), default=0)
        print(f"wrote {args.output}: {count} sequence{'s' * (count != 1)} of at most {longest} tokens")


def _plot(args) -> None:
    from backends.plot import plot_runs

    quantities = plot_runs(args.runs, args.out, size=args.size, dpi=args.dpi)
    print(f"wrote {args.out}: {len(args.runs)} run{'s' * (len(args.runs) != 1)}, {args.size[0]}x{args.size[1]} "
          f"pixels ({', '.join(quantities)})")


def _check(args) -> int:
    import dsl
    from backends.parity import check, print_report

    spec, graph = dsl.load(args.spec)
    report = check(spec, graph, dtype=args.dtype, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                   disabled_passes=args.no_optimize, precision=args.precision, device=args.device)
    print_report(report)
    return 0 if report.ok else 1


def _sample(args) -> None:
    import dsl
    from backends.sample import check_grid_path, generator_of, sample_grid
    from backends.weights import load_weights

    check_grid_path(args.out)
    spec, graph = dsl.load(args.spec)
    generator_of(spec, graph)  # refuses a spec that is not a GAN before the weights are read
    images = sample_grid(spec, graph, args.target, load_weights(args.weights, graph), args.out, count=args.count,
                         seed=args.seed, nrow=args.nrow, device=args.device)
    print(f"wrote {args.out}: {len(images)} images {list(images.shape[1:])} in a grid of {args.nrow} per row")


def _export(args) -> int:
    import dsl
    from backends.export import export_model

    spec, graph = dsl.load(args.spec)
    result = export_model(spec, graph, args.format, args.out, weights=args.weights, model=args.model, seed=args.seed)
    print(result.summary() if result.ok else f"error: {result.failure()}", file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


_COMPUTE_VERBS = ("train", "eval", "predict", "decode", "check", "sample")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dslc", description="One YAML model spec -> native torch and Flax models, "
                     "proven equal, trained from one CLI.")
    parser.add_argument("--version", action="version", version=f"dslc {_version()}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, run, help: str, description: str = "", spec_optional: bool = False,
             takes_spec: bool = True) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help, description=description or help)
        p.set_defaults(run=run, parser=p)
        if name in _COMPUTE_VERBS:
            p.add_argument("--threads", type=_positive, help="CPU threads for torch and XLA (default: the cores "
                           "this process may use; on a machine another process keeps busy, try 1)")
            p.add_argument("--device", choices=DEVICES, default="auto",
                           help="cpu, cuda (a GPU; refused where there is none) or auto (default: a GPU if there "
                           "is one)")
        if takes_spec:
            p.add_argument("spec", nargs="?" if spec_optional else None, help="the spec file (YAML)")
        return p

    verb("validate", _validate, "check a spec: schema, names and every shape; exit 2 on an error")
    verb("summary", _summary, "table of layers, output shapes and parameter counts")
    verb("schema", _schema, "print the JSON Schema of spec files (for editor completion)", takes_spec=False)

    train = verb("train", _train, "train on the spec's dataset; writes metrics.jsonl, TensorBoard events, weights, "
                 "checkpoints, summary.json; exit 1 where the loss or weights turn NaN or Inf", spec_optional=True)
    _target(train)
    train.add_argument("--epochs", type=_positive, help="override train.epochs")
    train.add_argument("--max-steps", type=_positive, help="stop after this many optimizer steps")
    train.add_argument("--batch-size", type=_positive, help="override train.batch_size")
    train.add_argument("--lr", type=_positive_float, help="override the optimizer's learning rate")
    train.add_argument("--seed", type=int, help="initial weights, batch order, dropout (default 0)")
    _precision(train, "override train.precision: bf16 is mixed precision (bfloat16 compute, float32 weights)")
    train.add_argument("--out", type=Path, help="run folder (default runs/<spec name>-<target>, numbered -2, -3, "
                       "... when that holds a run already)")
    train.add_argument("--overwrite", action="store_true", help="replace the run in an existing --out folder "
                       "(without it, such a folder is refused)")
    _data(train)
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar (default: on a terminal only)")
    _optimize(train)
    train.add_argument("--compile", action="store_true", help="torch target: run the step through torch.compile")
    train.add_argument("--checkpoint-every", type=_positive, metavar="STEPS",
                       help="write the run's checkpoint every STEPS optimizer steps (default: every 30 s of "
                       "training), and always at the end of an epoch")
    train.add_argument("--nproc", type=_positive, metavar="N", help="torch target: train data-parallel (DDP) in N "
                       "worker processes on this host, rank 0 writing (default 1; --resume: the run's own)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its checkpoint, exactly where it stopped, with its "
                       "own spec and options (SPEC may be left out)")
    train.add_argument("--devices", type=_positive, metavar="N", help="JAX target: data parallel over N devices "
                       "of this process (default: all; on the CPU, dslc makes XLA show N)")
    train.add_argument("--coordinator", metavar="HOST:PORT", help="JAX multi-host run: process 0's address "
                       "(default: $JAX_COORDINATOR_ADDRESS); every process passes the same one")
    train.add_argument("--num-processes", type=_positive, metavar="N", help="JAX multi-host run: processes in all")
    train.add_argument("--process-id", type=int, metavar="I", help="JAX multi-host run: this process, 0..N-1 "
                       "(process 0 writes the run folder)")
    train.set_defaults(target=None, seed=None, data_dir=None)  # given or not: --resume refuses the given ones

    evaluate = verb("eval", _eval, "test-split loss and metrics of saved weights (and the spec's "
                    "decode.metrics, from the decoded test split)")
    _target(evaluate)
    evaluate.add_argument("--weights", type=Path, required=True, help="safetensors file (torch state_dict names)")
    evaluate.add_argument("--batch-size", type=_positive, default=1000)
    _data(evaluate)

    predict = verb("predict", _predict, "model outputs for an array of inputs (.npy or .npz in, .npy out)",
                   "Model outputs for an array of inputs (.npy in, .npy out; an .npz of arrays by input name for a "
                   "model with several inputs). Inputs are examples as the spec's dataset stores them (digits: "
                   "pixels 0..16, MNIST: 0..255) and get the same transform as training: the dataset's scaling to "
                   "[0, 1], then data.normalize. Pass --transformed for inputs that already had it.")
    _target(predict)
    predict.add_argument("--weights", type=Path, required=True, help="safetensors file (torch state_dict names)")
    predict.add_argument("--input", type=Path, required=True,
                         help="a .npy array of shape (N, *input.shape), channels first, or one example; for several "
                         "inputs an .npz with one such array per input name (numpy.savez('x.npz', ids=..., "
                         "attention_mask=...)); or a .txt file of texts, one per line, for a spec with data.tokenizer")
    predict.add_argument("--output", type=Path, required=True,
                         help="the .npy file to write (exactly this name); .npz for a model with several outputs")
    predict.add_argument("--model", help="which model to run, for a spec with several (models:)")
    predict.add_argument("--transformed", action="store_true",
                         help="the inputs are already scaled and normalized as the model sees them: no transform")
    predict.add_argument("--batch-size", type=_positive, default=1000)

    decode = verb("decode", _decode, "token sequences from saved weights, by the spec's decode: section",
                  "Token sequences from saved weights, decoded as the spec's decode: section says (greedy: one "
                  "argmax token at a time, fed back, until eos; ctc: per-frame argmax, repeats merged, blanks "
                  "dropped), with the target's evaluation-mode model. Prints one sequence per line, or writes them.")
    _target(decode)
    decode.add_argument("--weights", type=Path, required=True, help="safetensors file (torch state_dict names)")
    decode.add_argument("--input", type=Path, required=True,
                        help="an .npz of arrays by input name (numpy.savez('x.npz', source=..., source_mask=...)), "
                        "every model input but the ones greedy decoding generates (tokens, mask); ctc: also the "
                        "frame lengths column if any; a .npy for a model with one such input")
    decode.add_argument("--output", type=Path, help="write the sequences here: a .npy [N, L] int64 padded with "
                        "the decoder's pad (ctc: blank), or an .npz of tokens and lengths (default: print them)")
    decode.add_argument("--batch-size", type=_positive, default=1000)

    sample = verb("sample", _sample, "a grid of images from a GAN's generator (torchvision's make_grid/save_image)")
    _target(sample)
    sample.add_argument("--weights", type=Path, required=True, help="safetensors file of the spec's models")
    sample.add_argument("--out", type=Path, required=True, help="the image to write (.png or .jpg)")
    sample.add_argument("--count", type=_positive, default=64, help="images in the grid (default 64)")
    sample.add_argument("--nrow", type=_positive, default=8, help="images per row (default 8)")
    sample.add_argument("--seed", type=int, default=0, help="the noise (default 0)")

    export = verb("export", _export, "write the model as an ONNX file, a StableHLO module or a torch.export "
                  "program, verified by running it", "Write the model as a file another runtime runs: ONNX (from "
                  "the torch target, through torch.onnx's dynamo exporter), StableHLO (from the JAX target, through "
                  "jax.export, serialized) or a torch.export program (.pt2). The batch axis stays dynamic. The file "
                  "is run after writing (onnxruntime, jax.export.deserialize, torch.export.load) on seeded batches "
                  "and compared with the target's own outputs; exit 1 when they differ by more than 1e-5 (of the "
                  "largest output value where that exceeds 1), and then nothing is written.")
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True, help="onnx (pip install 'dslc[export]'), "
                        "stablehlo or torch-export")
    export.add_argument("--out", type=Path, required=True, help="the file to write (model.onnx, model.stablehlo, "
                        "model.pt2)")
    export.add_argument("--weights", type=Path, help="safetensors file (torch state_dict names; default: the "
                        "initial weights of --seed, with a warning)")
    export.add_argument("--model", help="which model to export, for a spec with several (models:, a GAN's "
                        "generator or discriminator)")
    export.add_argument("--seed", type=int, default=0, help="initial weights without --weights, and the "
                        "verification batches (default 0)")

    check = verb("check", _check, "prove the torch and JAX models equal: outputs, gradients, K training steps; "
                 "exit 1 on a mismatch")
    check.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    check.add_argument("--steps", type=_positive, default=5, help="optimizer steps to compare (default 5)")
    check.add_argument("--batch-size", type=_positive, help="default: the spec's train.batch_size")
    check.add_argument("--seed", type=int, default=0)
    _precision(check, "compare the two targets in mixed precision (bf16), against bf16 tolerances (default: the "
               "spec's train.precision)")
    _optimize(check)

    plot = verb("plot", _plot, "loss and metric curves of runs, from their metrics.jsonl, in one image",
                "Loss and metric curves of runs, read from their metrics.jsonl: one panel per quantity (loss, each "
                "metric) over the optimizer step, a colour per run, train solid, val dashed, test dotted; so a torch "
                "and a JAX run of one spec compare at a glance.", takes_spec=False)
    plot.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run folders dslc train wrote")
    plot.add_argument("--out", type=Path, default=Path("curves.png"),
                      help="the image to write (default curves.png; .pdf and .svg also work)")
    plot.add_argument("--size", type=_size, default=(1200, 800), metavar="WxH",
                      help="the image's size in pixels (default 1200x800)")
    plot.add_argument("--dpi", type=_positive, default=100, help="dots per inch: the text's scale (default 100)")
    return parser


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=("torch", "jax"), default="jax", help="backend (default jax)")


def _precision(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--precision", choices=PRECISIONS, help=help)


def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="where datasets live (default ./data)")
    parser.add_argument("--dataset", help="use this dataset instead of the spec's data.dataset")


def _optimize(parser: argparse.ArgumentParser) -> None:
    from dsl.passes import PASSES

    parser.add_argument("--no-optimize", nargs="?", const=("all",), default=(), metavar="PASS[,PASS]",
                        type=lambda text: tuple(filter(None, text.split(","))),
                        help=f"turn off all optimization passes, or the named ones ({', '.join(PASSES)})")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dslc")
    except PackageNotFoundError:  # run from a checkout without installing
        return "(not installed)"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _size(text: str) -> tuple[int, int]:
    """``WxH`` in pixels: ``1200x800``."""
    width, x, height = text.lower().partition("x")
    if not (x and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT in pixels, e.g. 1200x800, got {text!r}")
    return int(width), int(height)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


if __name__ == "__main__":
    sys.exit(main())
