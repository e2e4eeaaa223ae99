"""The model options every ``led-cpp`` command takes, and loading the model they name."""

from __future__ import annotations

import argparse
import os

from .config import LED_PROJECTION_HELP, LED_PROJECTIONS
from .default_model import default_model_path
from .model import Model


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """-m/--model (default: the bundled model), --hf-repo, --n-ctx, --threads, --n-gpu-layers,
    --led-projection and --verbose."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "-m",
        "--model",
        metavar="MODEL",
        help="GGUF file (default: the bundled Gemma 3 270M of the demo extra); with --hf-repo, a "
        "file name or glob in that repository",
    )
    group.add_argument(
        "--hf-repo",
        metavar="REPO",
        help="-m names a file of this Hugging Face repository, downloaded into the Hub cache (of "
        "each Ray worker's node with --ray)",
    )
    group.add_argument("--n-ctx", type=int, default=4096, help="context size (4096)")
    group.add_argument("--threads", type=int, default=None, help="CPU threads (all cores)")
    group.add_argument("--n-gpu-layers", type=int, default=-1, help="layers to offload to a GPU build (-1 = all)")
    group.add_argument("--led-projection", choices=LED_PROJECTIONS, default="auto", help=LED_PROJECTION_HELP)
    group.add_argument("--verbose", action="store_true", help="show llama.cpp's log")


def model_path(args: argparse.Namespace) -> str:
    """What -m names: the GGUF path, or with --hf-repo a file of the repository. Without -m, the
    bundled model's path (kept in ``args.model``: it is found once); FileNotFoundError says what
    to install when it is missing."""
    if not args.model:
        if args.hf_repo:
            raise ValueError(
                "--hf-repo needs -m FILE: the GGUF file (or a glob such as '*Q4_K_M.gguf') in the repository"
            )
        args.model = str(default_model_path())
    return str(args.model)


def model_name(args: argparse.Namespace) -> str:
    """The model's identity in a run: the basename of what -m names."""
    return os.path.basename(model_path(args))


def model_kwargs(args: argparse.Namespace) -> dict:
    """The ``Model`` arguments the options give, but the thread count (a Ray worker sets its own)."""
    return {
        "n_ctx": args.n_ctx,
        "n_gpu_layers": args.n_gpu_layers,
        "led_projection": args.led_projection,
        "verbose": args.verbose,
    }


def load_model(args: argparse.Namespace) -> Model:
    """The model the options name, loaded in this process."""
    kwargs = {**model_kwargs(args), "n_threads": args.threads}
    if args.hf_repo:
        return Model.from_pretrained(args.hf_repo, model_path(args), **kwargs)
    return Model(model_path(args), **kwargs)
