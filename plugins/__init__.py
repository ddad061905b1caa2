"""Built-in Vitascope plug-ins; each exposes `plugin` for the `vitascope.plugins` entry-point group."""
