"""The Streamlit layer. The only part of ``explorer`` that imports streamlit; no core module imports it."""

from explorer.ui.jobs import (
    follow_job,
    has_result,
    job_progress_ui,
    job_runner,
    run_line,
    running_jobs_ui,
    stopped_epoch,
)
from explorer.ui.navigation import FAVICON, page_header
from explorer.ui.resources import (
    cached_codes,
    cached_dataset,
    cached_dims_by_kl,
    cached_epoch_view,
    cached_image_scores,
    cached_latent_map,
    cached_model,
    checkpoint_hash,
    ready_projection,
)
from explorer.ui.sidebar import Current, current, open_model, save_upload, sidebar_ui
from explorer.ui.widgets import (
    explainer,
    image_picker,
    lazy_expander,
    model_summary,
    show_gallery,
    show_grid,
    show_image,
)

__all__ = [
    "FAVICON",
    "Current",
    "cached_codes",
    "cached_dataset",
    "cached_dims_by_kl",
    "cached_epoch_view",
    "cached_image_scores",
    "cached_latent_map",
    "cached_model",
    "checkpoint_hash",
    "current",
    "ready_projection",
    "running_jobs_ui",
    "run_line",
    "explainer",
    "follow_job",
    "has_result",
    "image_picker",
    "job_progress_ui",
    "job_runner",
    "lazy_expander",
    "model_summary",
    "open_model",
    "page_header",
    "save_upload",
    "show_gallery",
    "show_grid",
    "show_image",
    "sidebar_ui",
    "stopped_epoch",
]
