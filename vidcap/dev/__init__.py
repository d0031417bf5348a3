"""Development helpers, never imported by the runtime path: synthetic media (``synth``), tiny
random-weight models (``tiny``, one module per model family), a fault-injecting chat server (``chat_server``) and the demo
builder (``demo``). Imported lazily by the ``demo`` / ``tiny-model`` commands, tests and benches."""
