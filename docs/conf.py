"""Sphinx configuration for sciTie's documentation."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(0, os.path.abspath("examples"))

from sciTie import __version__  # noqa: E402

project = "sciTie"
author = "sciTie developers"
copyright = "2026, sciTie developers"
version = release = __version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.mathjax", "numpydoc"]
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
exclude_patterns = ["_build", "examples"]
html_theme = "alabaster"
html_static_path: list[str] = []
nitpicky = False
