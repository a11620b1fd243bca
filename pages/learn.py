"""Learn: a guided VAE lesson to project, one concept per step, each with its formula and a live demonstration."""

import streamlit as st

from explorer import ui
from explorer.course.steps import STEPS, step_index
from explorer.ui.course import DEMOS

STEP_PARAM = "step"  # 1-based step number (or key) in the URL: /learn?step=5
# A projector shows 800 px or so: less margin and a smaller title above the lesson, so its demo starts higher.
COMPACT_CSS = """<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }
[data-testid='stMainBlockContainer'] h1 { font-size: 2rem; padding-bottom: 0.5rem; }</style>"""

ui.page_header("Learn: VAEs in 18 steps")
st.html(COMPACT_CSS)
i = step_index(st.query_params.get(STEP_PARAM))
step = STEPS[i]


def go(j: int) -> None:
    st.query_params[STEP_PARAM] = str(j + 1)
    st.rerun()


c1, c2, c3 = st.columns([1, 4, 1], vertical_alignment="center")
if c1.button("Previous", icon=":material/arrow_back:", disabled=i == 0, key="learn_prev", use_container_width=True):
    go(i - 1)
pick = c2.selectbox(
    "Step", range(len(STEPS)), index=i, format_func=lambda j: f"{j + 1}. {STEPS[j].title}", label_visibility="collapsed"
)
if pick != i:
    go(pick)
if c3.button(
    "Next", icon=":material/arrow_forward:", disabled=i == len(STEPS) - 1, key="learn_next", use_container_width=True
):
    go(i + 1)
st.progress((i + 1) / len(STEPS))

st.header(f"{i + 1}. {step.title}")
st.markdown(step.body)
st.latex(step.formula)
DEMOS[step.key]()
st.info(f"**Try this:** {step.try_this}", icon=":material/lightbulb:")
page = "pages/home.py" if step.page == "/" else f"pages{step.page}.py"
st.page_link(
    page, label=f"Explore this in full on {step.page}", icon=":material/open_in_new:", query_params=step.params or None
)
