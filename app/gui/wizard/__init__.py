"""The training wizard: task → data → starting point → recipe → run → evaluate → install, every page
editing one Qt-free WizardSpec (app.core.wizard_spec); training runs in a worker process."""

from .wizard import TrainingWizard

__all__ = ["TrainingWizard"]
