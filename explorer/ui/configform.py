"""Widgets built from a model config's ``option()`` fields: the /train form knows no field list."""

from __future__ import annotations

from typing import Any

import streamlit as st

from explorer.config import Option, config_options
from explorer.models import get_model_class

COLUMNS = 4


def option_widget(opt: Option, key: str) -> Any:
    """One widget for one option, in the current container; returns the value (raw text if unparsable)."""
    label = opt.label or opt.name.replace("_", " ").capitalize()
    if isinstance(opt.default, bool):
        return st.toggle(label, opt.default, key=key, help=opt.help)
    if opt.choices:
        return st.radio(label, opt.choices, opt.choices.index(opt.default), key=key, help=opt.help, horizontal=True)
    if isinstance(opt.default, tuple):
        text = st.text_input(label, ",".join(map(str, opt.default)), key=key, help=opt.help)
        try:
            return opt.parse(text)
        except ValueError as exc:
            st.error(str(exc))
            return text  # submitting refuses it too
    if isinstance(opt.default, int):
        lo, hi = int(opt.lo if opt.lo is not None else 0), int(opt.hi if opt.hi is not None else 10**6)
        if hi - lo <= 64:
            return int(st.slider(label, lo, hi, opt.default, key=key, help=opt.help))
        return int(st.number_input(label, lo, hi, opt.default, key=key, help=opt.help))
    return float(st.number_input(label, opt.lo, opt.hi, float(opt.default), opt.step, key=key, help=opt.help))


def config_form(kind: str, key: str) -> dict[str, Any]:
    """Widgets for every option ``kind`` uses, in rows of COLUMNS; returns {field: value}.

    Widgets of options with the same name and default share their state across kinds.
    """
    cls = get_model_class(kind)
    opts = [o for o in config_options(cls.config_cls) if o.name not in cls.unused_options]
    values: dict[str, Any] = {}
    for row in range(0, len(opts), COLUMNS):
        for col, opt in zip(st.columns(COLUMNS), opts[row : row + COLUMNS]):
            with col:
                values[opt.name] = option_widget(opt, f"{key}{opt.name}={opt.default!r}")
    return values
