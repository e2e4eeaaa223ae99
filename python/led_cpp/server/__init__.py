"""An OpenAI-compatible HTTP server over led_cpp's engine (``led-cpp serve``; extra ``server``)."""
