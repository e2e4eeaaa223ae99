"""led_cpp: Latent Exploration Decoding for GGUF reasoning models, inside llama.cpp's graph."""

from importlib import metadata as _metadata

from .chat import render_chat_template
from .config import LEDConfig, SamplingConfig
from .generation import BatchStream, Generation
from .gguf_check import ModelFileError
from .model import Model
from .results import GenerationResult, Timings, TraceStep

__all__ = [
    "BatchStream",
    "Generation",
    "GenerationResult",
    "LEDConfig",
    "Model",
    "ModelFileError",
    "SamplingConfig",
    "Timings",
    "TraceStep",
    "render_chat_template",
]
try:  # the version lives in pyproject.toml only
    __version__ = _metadata.version("led_cpp")
except _metadata.PackageNotFoundError:  # the package copied without its metadata (tools/sanitize.sh)
    __version__ = "0+unknown"
