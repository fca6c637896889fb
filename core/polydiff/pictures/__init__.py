"""The picture kit every writer shares: fonts, labelled grids, strips of frames, loss curves,
PNG and GIF writing with Pillow (importing this package imports none of its modules).

- :mod:`polydiff.pictures.grids`: :func:`font`, :func:`text_size`, :func:`wrap`, :func:`to_pictures`
  (``[B, 1 or 3, H, W]`` -> pictures), :func:`labelled_rows` (forward/reverse strips),
  :func:`captioned_grid`, :func:`save_png`.
- :mod:`polydiff.pictures.frames`: clips ``[3, T, H, W]`` -> frames, :func:`frame_sheet`, :func:`save_gif`.
- :mod:`polydiff.pictures.curves`: :func:`loss_curve` (one loss, smoothed), :func:`loss_plot` (terms).

Output paths (file or directory, numbering) follow :mod:`polydiff.outputs`.
"""
