"""Vitascope: compressed tiny Vision Transformers at work for imaging labs."""


def _version() -> str:
    """The installed distribution's version (the frozen bundle ships its dist-info too); in a checkout that was
    never pip-installed, pyproject.toml's. pyproject.toml is the one place the version is written."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vitascope")
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        try:
            text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
            return str(tomllib.loads(text)["project"]["version"])
        except (OSError, KeyError, ValueError):
            return "0+unknown"


__version__ = _version()
