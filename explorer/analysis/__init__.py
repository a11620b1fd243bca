"""Analysis on trained models: evaluation, traversal, arithmetic, anchors, projections."""
