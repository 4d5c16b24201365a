"""Recipes: a whole fit in one TOML file, the same for every model (``scitie fit FILE.toml``).

>>> from sciTie.recipes import bundled_recipes, load_recipe
>>> "earthquakes" in bundled_recipes()
True
>>> load_recipe("earthquakes").kind
'hmm'
"""
from ._data import lengths_from_labels, read_table
from ._files import RunFiles, run_files
from ._recipe import (BUNDLED, KINDS, Option, Recipe, RecipeKind, apply_overrides,
                      bundled_recipe_text, bundled_recipes, get_kind, load_recipe, parse_recipe,
                      parse_value, peek_kind)
from ._schema import ArrayOfTables, Field, Table, describe, validate

__all__ = ["Recipe", "RecipeKind", "Option", "KINDS", "BUNDLED", "load_recipe", "parse_recipe",
           "bundled_recipes", "bundled_recipe_text", "get_kind", "apply_overrides", "parse_value",
           "Field", "Table", "ArrayOfTables", "validate", "describe", "read_table",
           "lengths_from_labels", "run_recipe", "run_files", "RunFiles", "peek_kind"]


def run_recipe(recipe: Recipe):
    """Fit a validated recipe with its kind's runner; returns a :class:`sciTie.RunSummary`."""
    return get_kind(recipe.kind).run(recipe)
