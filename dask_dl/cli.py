"""The ``dask-dl`` command line: train a model from a table at any fsspec URL, predict with it.

    dask-dl train DATA_URL --y COLUMN --model-out URL [--validation URL] [--classification | --regression]
                  [--scheduler ADDRESS] [--storage-option KEY=VALUE ...] [--storage-options JSON]
                  [--<any H2O parameter> VALUE ...] [--debug]
    dask-dl predict MODEL_URL DATA_URL --out URL [--scheduler ADDRESS] [--storage-option KEY=VALUE ...]

Data is CSV when the URL ends in .csv/.csv.gz/.txt/.tsv and Parquet otherwise (``data.io.read_table``).
Every parameter of ``params.PARAMETERS`` is an option named like the parameter (``--epochs 20``,
``--hidden 64 64``, ``--quiet_mode true``; dashes work too: ``--quiet-mode true``). Values are parsed by the
type of the parameter's default and validated by ``params.check_values`` before any cluster starts.

Model kind, the H2O rule: a categorical response (string/object/category/bool dtype) trains a classifier,
a numeric one (int or float) a regressor; ``--classification`` forces classes (H2O's ``asfactor()``),
``--regression`` forces a regressor.

Errors a user can cause (bad arguments, a missing column or URL, a file that is not a model) print ONE
line on stderr and exit non-zero (2: usage, 1: everything else); ``--debug`` re-raises them instead.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from typing import Any, Sequence

from . import params as P

PROG = "dask-dl"

# parameters whose value is a list (nargs='+') and the type of each element
_LIST_PARAMS = {"hidden": int, "hidden_dropout_ratios": float, "ignored_columns": str, "class_sampling_factors": float}
# enum parameters: matched case-insensitively ("rectifier" -> "Rectifier")
_CHOICES = {"activation": P.ACTIVATIONS, "initial_weight_distribution": P.WEIGHT_DISTRIBUTIONS,
            "missing_values_handling": P.MISSING_HANDLING, "loss": P.LOSSES, "distribution": P.DISTRIBUTIONS,
            "stopping_metric": P.STOPPING_METRICS, "auc_type": P.AUC_TYPES,
            "score_validation_sampling": ("Uniform", "Stratified"), "categorical_encoding": P.CATEGORICAL_ENCODINGS}
# a distributed.Client cannot come from the command line (use --scheduler), nor can arrays of weights
_NOT_CLI = ("client", "initial_weights", "initial_biases", "pretrained_autoencoder", "warm_start")


class CliError(Exception):
    """A user error with a one-line message; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage + exiting, so main prints exactly one line."""

    def error(self, message):
        raise CliError(f"{self.prog}: {message}", code=2)


# ------------------------------------------------------------------------------- value parsing
def parse_bool(text: str) -> bool:
    t = str(text).strip().lower()
    if t in ("true", "1", "yes", "y", "on", "t"):
        return True
    if t in ("false", "0", "no", "n", "off", "f"):
        return False
    raise argparse.ArgumentTypeError(f"invalid bool value {text!r} (use true/false, 1/0, yes/no)")


parse_bool.__name__ = "bool"


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        f = float(text)  # "1e4" is fine for an integer parameter; "2.5" is not
        if f.is_integer():
            return int(f)
        raise


_parse_int.__name__ = "int"


def _choice_parser(options):
    def parse(text: str) -> str:
        for o in options:
            if o.lower() == text.lower():
                return o
        return text  # params.check_values names the parameter and lists the options
    parse.__name__ = "str"
    return parse


def _add_parameter_options(parser: argparse.ArgumentParser) -> list:
    """One option per H2O parameter; unset options stay absent (the estimator keeps H2O's default)."""
    group = parser.add_argument_group("H2O Deep Learning parameters (defaults as in H2O-3)")
    names = []
    for name, spec in P.PARAMETERS.items():
        if name in _NOT_CLI:
            continue
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        default = spec.default
        kw: dict[str, Any] = dict(dest=name, default=argparse.SUPPRESS,
                                  help=f"{spec.doc} (default: {default!r})")
        if name in _LIST_PARAMS:
            kw.update(nargs="+", type=_LIST_PARAMS[name],
                      metavar={"hidden": "N", "ignored_columns": "COLUMN"}.get(name, "R"))
        elif isinstance(default, bool):
            kw.update(type=parse_bool, nargs="?", const=True, metavar="BOOL")
        elif isinstance(default, int):
            kw.update(type=_parse_int, metavar="INT")
        elif isinstance(default, float):
            kw.update(type=float, metavar="X")
        elif name in _CHOICES:
            kw.update(type=_choice_parser(_CHOICES[name]), metavar="{" + ",".join(_CHOICES[name]) + "}")
        else:
            kw.update(type=str, metavar="VALUE")
        group.add_argument(*flags, **kw)
        names.append(name)
    return names


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="Dask scheduler to connect to (e.g. tcp://host:8786); default: an embedded "
                             "LocalCluster for train, the local threaded scheduler for predict")
    parser.add_argument("--storage-option", "--storage_option", dest="storage_option", action="append",
                        default=[], metavar="KEY=VALUE",
                        help="fsspec storage option for every URL (repeatable); dotted keys nest, e.g. "
                             "client_kwargs.endpoint_url=http://localhost:9000; values true/false/numbers "
                             "are parsed as JSON")
    parser.add_argument("--storage-options", "--storage_options", dest="storage_options", metavar="JSON",
                        help="fsspec storage options as one JSON object (merged with --storage-option)")
    parser.add_argument("--debug", action="store_true", help="re-raise errors with a traceback")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, allow_abbrev=False,
                     description="H2O-3 Deep Learning on Dask: train on and predict from CSV/Parquet at any "
                                 "fsspec URL (local, s3://, hdfs://, gcs://, ...).")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,predict,export}")
    sub.required = True

    tr = sub.add_parser("train", allow_abbrev=False, help="train a model and save it",
                        description="Train a DeepLearningClassifier/Regressor/Autoencoder on DATA_URL and save it to "
                                    "--model-out. Put DATA_URL before list options such as --hidden.")
    tr.add_argument("data", metavar="DATA_URL", help="training data: CSV (.csv/.csv.gz/.txt/.tsv) or Parquet")
    tr.add_argument("--y", "-y", metavar="COLUMN", help="response column (required unless --autoencoder)")
    tr.add_argument("--model-out", "--model_out", dest="model_out", required=True, metavar="URL",
                    help="where to save the model (.npz arrays + JSON metadata; any fsspec URL)")
    tr.add_argument("--validation", "--validation-data", dest="validation", metavar="URL",
                    help="validation data holding the response column (scored into the history)")
    kind = tr.add_mutually_exclusive_group()
    kind.add_argument("--classification", dest="kind", action="store_const", const="classification",
                      help="train a classifier even for a numeric response (H2O's asfactor())")
    kind.add_argument("--regression", dest="kind", action="store_const", const="regression",
                      help="train a regressor (the response must be numeric)")
    kind.add_argument("--autoencoder", dest="kind", action="store_const", const="autoencoder",
                      help="train a DeepLearningAutoencoder on every column (no --y); its predict writes anomaly "
                           "scores")
    _add_common_options(tr)
    tr.set_defaults(param_names=_add_parameter_options(tr), func=_train)

    pr = sub.add_parser("predict", allow_abbrev=False, help="predict with a saved model",
                        description="Predict DATA_URL with the model at MODEL_URL; write column 'predict' "
                                    "(+ 'p_<class>' per class for classifiers; an autoencoder's anomaly score "
                                    "'Reconstruction.MSE') to --out: CSV when it ends in .csv/.csv.gz (one file), "
                                    "else a Parquet directory.")
    pr.add_argument("model", metavar="MODEL_URL", help="a model saved by 'dask-dl train' or save_model")
    pr.add_argument("data", metavar="DATA_URL", help="data to predict: CSV or Parquet")
    pr.add_argument("--out", required=True, metavar="URL", help="output: .csv/.csv.gz -> one CSV file, "
                                                                "anything else -> a Parquet directory")
    pr.add_argument("--per-feature", "--per_feature", dest="per_feature", action="store_true",
                    help="autoencoders: write each expanded input's squared error (reconstr_<input>.SE) instead of "
                         "the row's Reconstruction.MSE")
    _add_common_options(pr)
    pr.set_defaults(func=_predict)

    ex = sub.add_parser("export", allow_abbrev=False, help="export a saved model for deployment",
                        description="Export the model at MODEL_URL: --format python writes one Python file that "
                                    "needs only numpy (score(columns) -> predictions).")
    ex.add_argument("model", metavar="MODEL_URL", help="a model saved by 'dask-dl train' or save_model")
    ex.add_argument("--format", required=True, choices=["python", "onnx"], help="python (numpy only) or onnx")
    ex.add_argument("--out", required=True, metavar="URL", help="where to write the exported model")
    _add_common_options(ex)
    ex.set_defaults(func=_export)
    return parser


# ----------------------------------------------------------------------------- storage options
def _parse_scalar(text: str):
    try:
        v = json.loads(text)
    except ValueError:
        return text
    return v if v is None or isinstance(v, (bool, int, float)) else text


def storage_options_from(pairs: Sequence[str], json_text: str | None = None) -> dict:
    """``["a.b=1", "anon=true"]`` -> ``{"a": {"b": 1}, "anon": True}``, merged over the JSON object."""
    opts: dict = {}
    if json_text:
        try:
            opts = json.loads(json_text)
        except ValueError as err:
            raise CliError(f"--storage-options is not valid JSON: {err}", code=2) from None
        if not isinstance(opts, dict):
            raise CliError("--storage-options must be a JSON object, e.g. '{\"anon\": true}'", code=2)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--storage-option {pair!r} is not KEY=VALUE", code=2)
        parts = key.split(".")
        d = opts
        for p in parts[:-1]:
            if not isinstance(d.setdefault(p, {}), dict):
                raise CliError(f"--storage-option {pair!r}: {p!r} is already set to a value", code=2)
            d = d[p]
        d[parts[-1]] = _parse_scalar(value)
    return opts


# ------------------------------------------------------------------------------------ helpers
def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _underlying(err: BaseException) -> BaseException | None:
    """The innermost cause of ``err`` that is not a FileNotFoundError (e.g. a refused connection)."""
    found, seen = None, set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if not isinstance(err, FileNotFoundError):
            found = err
        err = err.__cause__ or err.__context__
    return found


def _read(url: str, storage_options: dict, what: str):
    """A lazy dask DataFrame over ``url``; any failure to find/open it names the URL."""
    from .data.io import read_table
    try:
        df = read_table(url, storage_options or None)
    except FileNotFoundError as err:
        cause = _underlying(err)  # fsspec's HTTP files say "not found" for a refused connection too
        why = "no such file or directory" if cause is None else f"{type(cause).__name__}: {_one_line(cause)}"
        raise CliError(f"cannot read {what} {url!r}: {why}") from err
    except Exception as err:  # noqa: BLE001 - fsspec/pyarrow/s3fs raise many types; all mean "cannot read"
        raise CliError(f"cannot read {what} {url!r}: {type(err).__name__}: {_one_line(err)}") from err
    first = df.columns[0] if len(df.columns) else None
    if isinstance(first, str) and first.startswith("\ufeff"):  # a UTF-8 byte-order mark in a CSV header
        df = df.rename(columns={first: first.lstrip("\ufeff")})
    return df


def infer_kind(dtype) -> str:
    """H2O's rule: categorical (string/object/category/bool) response -> classification, numeric ->
    regression."""
    import pandas as pd
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "classification"
    return "regression"


class _Connection:
    """``with _Connection(address) as client``: a distributed.Client to ``address``, or None."""

    def __init__(self, address: str | None):
        self.address, self.client = address, None

    def __enter__(self):
        if self.address:
            from distributed import Client
            try:
                self.client = Client(self.address, timeout="10s")
            except (OSError, TimeoutError, ValueError) as err:
                raise CliError(f"cannot connect to the Dask scheduler {self.address!r}: {_one_line(err)}") from err
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        return False


def _prepare_output(url: str, storage_options: dict | None = None) -> None:
    """Check where the output goes now, so a typo fails before hours of training: a local parent
    folder is created (and must be writable); an s3:// bucket must exist (it is never created)."""
    import fsspec
    from .persist import check_destination
    try:
        check_destination(url, storage_options or None)
    except FileNotFoundError as err:
        raise CliError(str(err)) from err
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if "file" in (fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)):
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as err:
            raise CliError(f"cannot create the folder for {url!r}: {_one_line(err)}") from err
        if not os.access(parent, os.W_OK):
            raise CliError(f"cannot write {url!r}: folder {parent!r} is not writable")


def final_metrics(model) -> dict:
    """The training_*/validation_* metrics of the last scoring-history row."""
    hist = model.scoring_history()
    if hist.empty:
        return {}
    last = hist.iloc[-1]
    return {c: float(last[c]) for c in hist.columns
            if c.startswith(("training_", "validation_")) and isinstance(last[c], (int, float))}


# -------------------------------------------------------------------------------------- train
def _train(args, out) -> int:
    from .model import save_model
    values = {name: getattr(args, name) for name in args.param_names if hasattr(args, name)}
    P.check_values(values)  # out-of-range values fail here, before any data or cluster work
    so = storage_options_from(args.storage_option, args.storage_options)
    _prepare_output(args.model_out, so)
    frame = _read(args.data, so, "training data")
    if args.kind == "autoencoder":
        if args.y is not None:
            raise CliError("--autoencoder trains on every column: drop --y (or list columns to leave out in "
                           "--ignored_columns)")
        kind, about = "autoencoder", "every column"
    else:
        _check_response_column(frame, args)
        kind = args.kind or infer_kind(frame.dtypes[args.y])
        about = f"response {args.y!r}, {kind}" + ("" if args.kind else " by response type")
    valid = _read(args.validation, so, "validation data") if args.validation else None
    with _Connection(args.scheduler) as client:
        estimator = {"classification": "DeepLearningClassifier", "regression": "DeepLearningRegressor"}.get(
            kind, "DeepLearningAutoencoder")
        print(f"{PROG}: training a {estimator} on {args.data} ({about})", file=out, flush=True)
        model = _fit(frame, args.y, valid, values, kind, client, so or None)
    run = model.run
    print(f"{PROG}: trained {model.kind} model: {run.get('epochs', 0):.3f} epochs, {run.get('iterations', 0)} "
          f"iterations, {run.get('run_seconds', 0):.1f} s, stopped by {run.get('stop_reason', '?')}",
          file=out)
    metrics = final_metrics(model)
    if metrics:
        print("final metrics:", file=out)
        for k, v in metrics.items():
            print(f"  {k:<34} {v:.6g}", file=out)
    save_model(model, args.model_out, so or None)
    print(f"{PROG}: model saved to {args.model_out}", file=out, flush=True)
    return 0


def _check_response_column(frame, args) -> None:
    if args.y is None:
        raise CliError("--y COLUMN is required: the response column (or --autoencoder to train on every column)")
    if args.y not in frame.columns:
        cols = list(frame.columns)
        hint = difflib.get_close_matches(args.y, [str(c) for c in cols], n=1)
        raise CliError(f"response column {args.y!r} is not a column of {args.data!r}"
                       + (f" (did you mean {hint[0]!r}?)" if hint else "")
                       + f"; columns: {cols[:12]}{' ...' if len(cols) > 12 else ''}")


def _fit(frame, y: str, valid, values: dict, kind: str, client, storage_options: dict | None = None):
    """The training job on the frames, as the estimators run it (same checks, same config)."""
    from .estimators import checked_training_input
    from .job import train
    from .checkpoint import for_fit
    cfg = P.resolve(values, kind, n_classes=2)
    frame, columns, valid, info = checked_training_input(frame, y, kind, cfg, valid, what="the training data",
                                                         validation_what="the validation data")
    return train(frame, columns, cfg, validation=valid, client=client, info=info,
                 checkpoint=for_fit(cfg.params, kind, columns, storage_options))


# ------------------------------------------------------------------------------------ predict
def _load(url: str, storage_options: dict):
    from .errors import ModelFileError
    from .model import load_model
    try:
        return load_model(url, storage_options or None)
    except FileNotFoundError as err:
        raise CliError(f"model file {url!r} not found") from err
    except OSError as err:  # permissions, network, credentials
        raise CliError(f"cannot read model {url!r}: {type(err).__name__}: {_one_line(err)}") from err
    except ModelFileError as err:  # damaged, not a model, newer format: the message names the URL
        raise CliError(str(err)) from err
    except Exception as err:  # noqa: BLE001 - npz/zip/JSON/metadata errors all mean "not a model"
        raise CliError(f"{url!r} is not a dask_dl model file ({_one_line(err)})") from err


def _predict(args, out) -> int:
    so = storage_options_from(args.storage_option, args.storage_options)
    model = _load(args.model, so)
    frame = _read(args.data, so, "data")
    _prepare_output(args.out, so)
    if model.kind == "autoencoder":
        preds = model.anomaly(frame, per_feature=True) if args.per_feature else model.anomaly_frame(frame)
    elif args.per_feature:
        raise CliError(f"--per-feature is for autoencoders; {args.model!r} is a {model.kind} model")
    else:
        preds = model.predict_frame(frame)
    lower = args.out.lower().rstrip("/")
    with _Connection(args.scheduler):
        if lower.endswith((".csv", ".csv.gz")):
            preds.to_csv(args.out, single_file=True, index=False, storage_options=so or None,
                         **({"compression": "gzip"} if lower.endswith(".gz") else {}))
            fmt = "CSV"
        else:
            preds.to_parquet(args.out, write_index=False, storage_options=so or None,
                             name_function=lambda i: f"part.{i:05d}.parquet")
            fmt = "Parquet"
    what = f"{model.kind}: classes " + ", ".join(map(str, model.info.classes)) if model.kind not in (
        "regression", "autoencoder") else model.kind
    print(f"{PROG}: predictions ({what}) written to {args.out} ({fmt})", file=out)
    return 0


def _export(args, out) -> int:
    so = storage_options_from(args.storage_option, args.storage_options)
    model = _load(args.model, so)
    _prepare_output(args.out, so)
    if args.format == "onnx":
        try:
            model.to_onnx(args.out)
        except ImportError as err:
            raise CliError("--format onnx needs the onnx package (pip install onnx)") from err
        except ValueError as err:
            raise CliError(str(err)) from err
        what = "ONNX, one input per column"
    else:
        model.to_python(args.out, so or None)
        what = "Python, numpy only: score(columns)"
    print(f"{PROG}: {model.kind} model exported to {args.out} ({what})", file=out)
    return 0


# ---------------------------------------------------------------------------------------- main
def _unknown_message(extras: list, parser: argparse.ArgumentParser, command: str | None) -> str:
    opt = next((e for e in extras if e.startswith("-")), None)
    if opt is None:
        return f"{PROG} {command or ''}: unexpected argument(s) {' '.join(extras)}".replace("  ", " ")
    name = opt.split("=", 1)[0]
    known = []
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if sub is not None and command in sub.choices:
        known = [s for a in sub.choices[command]._actions for s in a.option_strings]
    hint = difflib.get_close_matches(name, known, n=1)
    return (f"{PROG} {command}: unknown parameter {name}" + (f" (did you mean {hint[0]}?)" if hint else "")
            + f"; see '{PROG} {command} --help' for the H2O parameter names")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failed, 2 bad usage)."""
    from .errors import ClusterUnavailableError, DataError, ModelDivergedError
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = build_parser()
    try:
        try:
            args, extras = parser.parse_known_args(argv)
        except SystemExit as exit_:  # --help / --version
            return int(exit_.code or 0)
        if extras:
            raise CliError(_unknown_message(extras, parser, getattr(args, "command", None)), code=2)
        return args.func(args, sys.stdout)
    except CliError as err:
        if debug and err.code != 2:
            raise
        print(f"{PROG}: error: {_one_line(err)}" if not str(err).startswith(PROG) else
              _one_line(str(err)).replace(":", ": error:", 1), file=sys.stderr)
        return err.code
    except (DataError, ValueError, FileNotFoundError, OSError, MemoryError, ClusterUnavailableError) as err:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - e.g. ModelDivergedError: still one line, --debug for more
        if debug or not isinstance(err, ModelDivergedError):
            raise
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
