"""The Streamlit layer. The only part of ``explorer`` that imports streamlit; no core module imports it."""

from explorer.ui.resources import cached_dataset, cached_model
from explorer.ui.sidebar import Current, current, save_upload, sidebar_ui
from explorer.ui.widgets import explainer, model_summary, show_grid

__all__ = ["Current", "cached_dataset", "cached_model", "current", "explainer", "model_summary", "save_upload",
           "show_grid", "sidebar_ui"]  # fmt: skip
