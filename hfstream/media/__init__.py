"""Media in and out: video files through PyAV, photo folders, the bundled sample picture."""
