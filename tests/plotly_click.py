"""Click a Plotly point in the browser by data coordinates (for Streamlit's on_select charts)."""

from __future__ import annotations

PIXEL_JS = """([traceName, i]) => {
  const gds = [...document.querySelectorAll('.js-plotly-plot')];
  for (const gd of gds) {
    const t = gd._fullData.findIndex(d => d.name === traceName);
    if (t < 0) continue;
    gd.scrollIntoView({block: "center"});
    const L = gd._fullLayout, x = gd._fullData[t].x[i], y = gd._fullData[t].y[i];
    const box = gd.getBoundingClientRect();
    return [box.left + L._size.l + L.xaxis.d2p(x), box.top + L._size.t + L.yaxis.d2p(y)];
  }
  return null; }"""


def click_point(page, trace_name: str, i: int = 0) -> None:
    """Click point ``i`` of the trace named ``trace_name`` in the first chart that has it."""
    page.wait_for_function(
        "() => document.querySelector('.js-plotly-plot') && document.querySelector('.js-plotly-plot')._fullLayout"
    )
    xy = page.evaluate(PIXEL_JS, [trace_name, i])
    if xy is None:
        raise AssertionError(f"no trace named {trace_name!r}")
    page.mouse.move(xy[0], xy[1])
    page.wait_for_timeout(150)
    page.mouse.click(xy[0], xy[1])
