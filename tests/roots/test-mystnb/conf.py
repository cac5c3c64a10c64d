# MyST-NB instead of MyST-Parser; the tests also build it with the order reversed
# (confoverrides), since either order must work.
extensions = ["myst_nb", "sphinx_evaldemo"]
project = "evaldemo-mystnb"
exclude_patterns = ["_build"]
nb_execution_mode = "off"  # MyST-NB's own execution is not what is tested
evaldemo_workers = 1
# A dict of this build's own: Sphinx's default one is shared by every app in the process,
# and MyST-NB's ".md": "myst-nb" would leak into the test builds after this one.
source_suffix = {".rst": "restructuredtext"}
