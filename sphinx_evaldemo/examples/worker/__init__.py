"""The process side: a warm parent that imports torch once, and one fresh child per example. Never imports Sphinx."""
