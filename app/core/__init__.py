"""The Qt-free, torch-free runtime: plug-in API, registry, model zoo, onnxruntime sessions, frames and jobs."""
