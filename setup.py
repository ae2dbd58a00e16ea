"""Packaging that pyproject.toml cannot express: templates/ and migrations/ stay at the
repository's top level (where the layout, alembic users and the docs expect them) but ship
inside the wheel as app/templates and app/migrations, so an installed app finds them beside
its own code (see app.resource_dir). Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

# Data directories shipped as (code-free) subpackages of app, mapped from the top level.
BUNDLED = {"app.templates": "templates", "app.migrations": "migrations"}

setup(
    packages=find_packages(include=["app*", "models*", "policies*"]) + list(BUNDLED),
    package_dir=BUNDLED,
    package_data={
        "app": ["static/*", "static/fonts/*"],
        "app.templates": ["**/*.html"],
        "app.migrations": ["script.py.mako", "versions/*.py"],
        "policies": ["*.toml"],
    },
)
