"""The latency floor: an empty Streamlit app that only redraws one image when one slider moves."""

import numpy as np
import streamlit as st

v = st.slider("value", -3.0, 3.0, 0.0, 0.05)
img = np.zeros((28, 28), dtype=np.uint8)
img[:, : int((v + 3) / 6 * 27) + 1] = 255
img[0, 0] = int(round((v + 3) * 20))  # every slider value gives distinct bytes (media URLs are content hashes)
st.image(img.repeat(10, 0).repeat(10, 1), caption="decode(z)")
