"""Session-state keys shared across pages: each has one writer, named here; page-local keys stay in their page."""

PENDING_MODEL = (
    "sidebar_pending_model"  # written by sidebar.open_model() and the ONNX import form; the sidebar selects it next run
)
MAP_SELECTION = "shared_map_selection"  # written by /latent-map (a lasso selection), read by /arithmetic
