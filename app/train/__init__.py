"""The shared core library: the only Vitascope code that imports torch (training, export, the job worker).

Import submodules explicitly (`from app.train import loop`); this package itself imports nothing heavy."""
