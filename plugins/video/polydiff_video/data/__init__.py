"""Video datasets: ``moving-shapes`` (generated) and ``video-folder`` (your GIF/MP4 clips)."""
