"""``dslc``: the command line. It parses arguments and calls library functions, nothing more."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from dsl import DslcError

    try:
        return args.run(args) or 0
    except DslcError as err:
        print(f"error: {err}" if not getattr(err, "location", None) else str(err), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


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
    from backends.loop import TrainOptions, train
    from dsl import DslcError

    spec, graph = dsl.load(args.spec)
    out = args.out or Path("runs") / f"{spec.name}-{args.target}"
    if args.compile and args.target != "torch":
        raise DslcError("--compile applies to --target torch (the JAX step is always jit-compiled)")
    options = TrainOptions(target=args.target, epochs=args.epochs, max_steps=args.max_steps,
                           batch_size=args.batch_size, lr=args.lr, seed=args.seed, out_dir=out,
                           data_dir=args.data_dir, dataset=args.dataset, progress=args.progress,
                           disabled_passes=args.no_optimize,
                           target_options={"compile": True} if args.compile else {})
    summary = train(spec, graph, options)
    print(f"test_accuracy {summary['test_accuracy']:.4f}  test_loss {summary['test_loss']:.4f}  "
          f"{summary['train_samples_per_sec']:,.0f} samples/s  compile {summary['compile_seconds']:.1f}s  "
          f"wall {summary['wall_seconds']:.1f}s  -> {out}")


def _eval(args) -> None:
    import dsl
    from backends.loop import evaluate
    from backends.weights import load_weights

    spec, graph = dsl.load(args.spec)
    result = evaluate(spec, graph, args.target, load_weights(args.weights, graph), data_dir=args.data_dir,
                      dataset=args.dataset, batch_size=args.batch_size)
    print(json.dumps(result))


def _predict(args) -> None:
    import numpy as np

    import dsl
    from backends.loop import predict
    from backends.weights import load_weights
    from dsl.errors import DataError

    spec, graph = dsl.load(args.spec)
    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{args.input}: cannot read a .npy array ({err})") from None
    y = predict(graph, args.target, load_weights(args.weights, graph), x, batch_size=args.batch_size)
    np.save(args.output, y)
    print(f"wrote {args.output}: {list(y.shape)} {y.dtype}")


def _check(args) -> int:
    import dsl
    from backends.parity import check, print_report

    spec, graph = dsl.load(args.spec)
    report = check(spec, graph, dtype=args.dtype, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                   disabled_passes=args.no_optimize)
    print_report(report)
    return 0 if report.ok else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dslc", description="One YAML model spec -> native torch and Flax models, "
                                     "proven equal, trained from one CLI.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, run, help: str) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help, description=help)
        p.set_defaults(run=run)
        if name != "schema":
            p.add_argument("spec", help="the spec file (YAML)")
        return p

    verb("validate", _validate, "check a spec: schema, names and every shape; exit 2 on an error")
    verb("summary", _summary, "table of layers, output shapes and parameter counts")
    verb("schema", _schema, "print the JSON Schema of spec files (for editor completion)")

    train = verb("train", _train, "train on the spec's dataset; writes metrics.jsonl, weights, summary.json")
    _target(train)
    train.add_argument("--epochs", type=_positive, help="override train.epochs")
    train.add_argument("--max-steps", type=_positive, help="stop after this many optimizer steps")
    train.add_argument("--batch-size", type=_positive, help="override train.batch_size")
    train.add_argument("--lr", type=_positive_float, help="override the optimizer's learning rate")
    train.add_argument("--seed", type=int, default=0, help="initial weights, batch order, dropout (default 0)")
    train.add_argument("--out", type=Path, help="output folder (default runs/<spec name>-<target>)")
    _data(train)
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar (default: on a terminal only)")
    _optimize(train)
    train.add_argument("--compile", action="store_true", help="torch target: run the step through torch.compile")

    evaluate = verb("eval", _eval, "test-split loss and accuracy of saved weights")
    _target(evaluate)
    evaluate.add_argument("--weights", type=Path, required=True, help="safetensors file (torch state_dict names)")
    evaluate.add_argument("--batch-size", type=_positive, default=1000)
    _data(evaluate)

    predict = verb("predict", _predict, "model outputs for an array of inputs (.npy in, .npy out)")
    _target(predict)
    predict.add_argument("--weights", type=Path, required=True, help="safetensors file (torch state_dict names)")
    predict.add_argument("--input", type=Path, required=True, help="inputs, shape (N, *input.shape), .npy")
    predict.add_argument("--output", type=Path, required=True, help="where to write the outputs (.npy)")
    predict.add_argument("--batch-size", type=_positive, default=1000)

    check = verb("check", _check, "prove the torch and JAX models equal: outputs, gradients, K training steps; "
                 "exit 1 on a mismatch")
    check.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    check.add_argument("--steps", type=_positive, default=5, help="optimizer steps to compare (default 5)")
    check.add_argument("--batch-size", type=_positive, help="default: the spec's train.batch_size")
    check.add_argument("--seed", type=int, default=0)
    _optimize(check)
    return parser


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=("torch", "jax"), default="jax", help="backend (default jax)")


def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="where datasets live (default ./data)")
    parser.add_argument("--dataset", help="use this dataset instead of the spec's data.dataset")


def _optimize(parser: argparse.ArgumentParser) -> None:
    from dsl.passes import PASSES

    parser.add_argument("--no-optimize", nargs="?", const=("all",), default=(), metavar="PASS[,PASS]",
                        type=lambda text: tuple(filter(None, text.split(","))),
                        help=f"turn off all optimization passes, or the named ones ({', '.join(PASSES)})")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


if __name__ == "__main__":
    sys.exit(main())
