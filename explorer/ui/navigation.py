"""Page plumbing shared by every page."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

FAVICON = Path(__file__).with_name("favicon.png")  # shipped in the package: no icon is fetched from a CDN

PIXELATED_CSS = "<style>[data-testid='stImage'] img { image-rendering: pixelated; }</style>"


def page_header(title: str) -> None:
    """Title a page, first routing legacy deep links through app.py.

    Streamlit treats a ``pages/`` folder beside the main script as a legacy multipage app
    until some run calls ``st.navigation``. If the first request of a fresh server is a deep
    link (``/traverse``), Streamlit runs the page file alone, without app.py and its sidebar.
    Clearing the flag and rerunning sends that run through app.py, which keeps the same page
    because page files are named after their URL paths.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    st.title(title)
