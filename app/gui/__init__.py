"""The Qt desktop app: main window, Qt host for plug-ins, jobs panel, model-zoo browser (the only Qt code)."""
