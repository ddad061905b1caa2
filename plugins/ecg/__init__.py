"""ECG plug-in: screen ECG images, DICOM and WFDB records for heart disease with a compressed tiny ViT, and
review the results (worklist, audit log, reports, de-identified export). Research use, not a diagnostic device."""

from app.core.registry import load_plugin

plugin = load_plugin(__name__)  # everything else is in vitascope.toml
