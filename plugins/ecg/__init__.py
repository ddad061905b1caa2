"""ECG plug-in: screen ECG images, DICOM and WFDB records for heart disease with a compressed tiny ViT, and
review the results (worklist, audit log, reports, de-identified export). Research use, not a diagnostic device."""

from __future__ import annotations

import argparse
from typing import Any

from app.core.plugin_api import API_VERSION, Host, PluginInfo, TrainTask

TASK = "ecg.screen"


class EcgPlugin:
    info = PluginInfo(id="ecg", name="ECG screening", version="0.1.0", api_version=API_VERSION,
                      description="ECG images, DICOM and WFDB records screened by a tiny ViT; review worklist "
                                  "with audit log. Research use only — not a diagnostic device.",
                      tasks=(TASK,),
                      entries=("plugins.ecg.labelled:labelled_data",),
                      train_tasks=(TrainTask(
                          id=TASK, title="ECG screening (4 classes)", plugin="ecg", problem="classification",
                          data_entry="plugins.ecg.dataset:make_dataset",
                          data_params={"split": "train", "n_per_class": 500, "n_val_per_class": 50,
                                       "size": [256, 352]},
                          count_param="n_per_class", val_param="n_val_per_class", image_size_param="",
                          default_seed=7, recipe="models/ecg-screen-vit/teacher.toml", metric="accuracy",
                          heldout={"seed": 20261122, "params": {"split": "heldout", "n_per_class": 500,
                                                                "n_val_per_class": 50, "size": [256, 352]}},
                          folder_entry="plugins.ecg.labelled:folder_dataset",
                          description="Normal / abnormal heartbeat / acute MI / history of MI from ECG printouts "
                                      "(synthetic 12-lead ECGs rendered as clean, scanned and photographed pages, "
                                      "or your own labelled ECG images: one sub-folder per class)."),))

    def create_engine(self, host: Host) -> Any:
        from .engine import EcgEngine

        return EcgEngine(host)

    def create_widget(self, host: Host, engine: Any) -> Any:
        from .widget import EcgWidget

        return EcgWidget(host, engine)

    def add_cli(self, subparsers: argparse._SubParsersAction) -> None:
        from .cli import add_cli

        add_cli(subparsers)


plugin = EcgPlugin()
