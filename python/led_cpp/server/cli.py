"""``led-cpp serve``: loads a model and serves the OpenAI-compatible API until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Callable

from ..cli_decoding import add_decoding_arguments, led_options
from ..cli_model import add_model_arguments, load_model


def register_serve_command(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="serve an OpenAI-compatible API (needs the server extra)")
    add_model_arguments(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--api-key", default=None, help="require 'Authorization: Bearer KEY' on every endpoint but /health"
    )
    serve.add_argument("--n-parallel", type=int, default=4, help="sequences decoded together (4)")
    serve.add_argument("--max-queue", type=int, default=256, help="sequences waiting beyond those before 429 (256)")
    serve.add_argument("--max-n", type=int, default=16, help="largest n a request may ask (16)")
    serve.add_argument("--max-tokens-limit", type=int, default=0, help="largest max_tokens (default: the context)")
    serve.add_argument("--max-body-bytes", type=int, default=4 << 20, help="largest request body (4 MiB)")
    serve.add_argument("--cors-origin", action="append", default=[], help="allow browser requests from this origin")
    serve.add_argument("--alias", default=None, help="model id in responses (default: the file name)")
    serve.add_argument("--top-k", type=int, default=40, help="standard sampling's top-k when a request gives none (40)")
    add_decoding_arguments(
        serve,
        sampling=False,
        led_help="LED (with the options below) for requests that do not say",
        help_overrides={"think_end": "LED: the end-of-think marker (default: a request's 'led' object's)"},
    )
    serve.set_defaults(func=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise RuntimeError("led-cpp serve needs the server extra: pip install 'led_cpp[server]'") from None
    from .app import ServerSettings, create_app
    from .protocol import LEDOptions

    for name in ("n_parallel", "max_n", "port"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if args.max_queue < 0 or args.max_tokens_limit < 0 or args.max_body_bytes < 1:
        raise ValueError("--max-queue, --max-tokens-limit and --max-body-bytes must not be negative")
    led = led_options(args)
    model = load_model(args)
    default_led = LEDOptions(**led) if args.led else None
    settings = ServerSettings(
        model_name=args.alias or model.path.name,
        n_parallel=args.n_parallel,
        max_queued=args.max_queue,
        max_n=args.max_n,
        max_tokens_limit=args.max_tokens_limit,
        api_key=args.api_key,
        cors_origins=tuple(args.cors_origin),
        max_body_bytes=args.max_body_bytes,
        default_led=default_led,
        top_k=args.top_k,
    )
    app = create_app(model, settings)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        lifespan="on",
    )
    server = _Server(config, on_exit=lambda: _stop_engine(app))
    mode = "LED by default" if default_led else "standard sampling by default, LED on request"
    print(
        f"led-cpp serve: {model.path.name} ({model.architecture}, n_ctx {model.n_ctx}, {args.n_parallel} parallel, "
        f"{mode}) on http://{args.host}:{args.port}/v1",
        file=sys.stderr,
        flush=True,
    )
    server.run()
    print("led-cpp serve: stopped", file=sys.stderr, flush=True)
    return 0


def _stop_engine(app: Any) -> None:
    bridge = app.state.server_state.get("bridge")
    if bridge is not None:
        bridge.stop()


class _Server:
    """uvicorn's server, made to stop on SIGINT/SIGTERM without re-raising the signal (exit 0).
    The signal also cancels the engine's jobs, so streams in flight end at the next step instead
    of holding the shutdown for uvicorn's graceful timeout."""

    def __new__(cls, config: Any, on_exit: Callable[[], None]) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                if self.should_exit and sig == signal.SIGINT:
                    self.force_exit = True
                self.should_exit = True
                on_exit()

        return Server(config)
