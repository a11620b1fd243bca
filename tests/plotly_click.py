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


BOX_JS = """(traceName) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g._fullData.some(d => d.name === traceName));
  const t = gd._fullData.find(d => d.name === traceName), L = gd._fullLayout, box = gd.getBoundingClientRect();
  const xs = [...t.x].map(v => box.left + L._size.l + L.xaxis.d2p(v)).sort((a, b) => a - b);
  const ys = [...t.y].map(v => box.top + L._size.t + L.yaxis.d2p(v)).sort((a, b) => a - b);
  const q = (a, f) => a[Math.floor(f * (a.length - 1))];
  return [q(xs, 0.3), q(ys, 0.3), q(xs, 0.7), q(ys, 0.7)]; }"""


def box_select(page, trace_name: str) -> None:
    """Drag a box over the middle of a trace's points with Plotly's Box Select tool."""
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    page.locator(".modebar-btn[data-title='Box Select']").first.click()
    x0, y0, x1, y1 = page.evaluate(BOX_JS, trace_name)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()
