import os
import sys

# what a sphinx-quickstart project with autodoc does (a sibling folder here, since the
# tests copy this root alone)
sys.path.insert(0, os.path.abspath("src"))

project = "evaldemo-autodoc"
copyright = "2026, the sphinx-evaldemo tests"
version = release = "1.0"
extensions = ["sphinx.ext.autodoc", "sphinx_evaldemo"]
evaldemo_workers = 1
