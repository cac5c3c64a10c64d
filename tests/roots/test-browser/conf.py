# The layout test root: built once per theme (html_theme comes as a confoverride).
project = "evaldemo"
copyright = "2026, the sphinx-evaldemo tests"
version = release = "1.0"
extensions = ["sphinx_evaldemo", "sphinx_copybutton", "sphinx_design"]
myst_enable_extensions = ["colon_fence"]
evaldemo_workers = 1
html_theme = "alabaster"
# pydata-sphinx-theme's own header is wider than a 375 px screen with the default title
# ("evaldemo 1.0 documentation") on a page with an in-page table of contents, examples or
# not; a short title keeps the page-overflow check about the panels.
html_title = "evaldemo"
