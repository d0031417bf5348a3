"""Development helpers, never imported by the runtime path: synthetic media (``synth``), tiny
random-weight models (``tiny_models``), a fault-injecting chat server (``chat_server``) and the demo
builder (``demo``). Imported lazily by the ``demo`` / ``tiny-model`` commands, tests and benches."""
