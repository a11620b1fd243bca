"""Latent Explorer: the Streamlit entry point. Sets up navigation and the shared sidebar."""

import streamlit as st

from explorer import heap, ui

# A file shipped in the package: a material-icon favicon would be fetched from a font CDN (the app runs offline).
st.set_page_config(page_title="Latent Explorer", page_icon=str(ui.FAVICON), layout="wide")

nav = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/latent-map.py", title="Latent map", icon=":material/scatter_plot:", url_path="latent-map"),
        st.Page("pages/traverse.py", title="Traverse", icon=":material/tune:", url_path="traverse"),
        st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:", url_path="generate"),
        st.Page("pages/arithmetic.py", title="Arithmetic", icon=":material/calculate:", url_path="arithmetic"),
        st.Page("pages/anchors.py", title="Anchors", icon=":material/anchor:", url_path="anchors"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
        st.Page("pages/shared.py", title="Shared space", icon=":material/join:", url_path="shared"),
        st.Page("pages/learn.py", title="Learn", icon=":material/school:", url_path="learn"),
    ]
)
ui.sidebar_ui()
ui.job_runner()  # created once per server: starts warming the default latent maps in the background
nav.run()
heap.freeze_long_lived()  # after the run: what this run imported stays out of later full collections
