"""Plotly figures and image grids built from core results (no streamlit)."""
