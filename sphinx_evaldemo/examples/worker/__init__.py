"""The child side: the process that imports torch and runs examples. Never imports Sphinx."""
