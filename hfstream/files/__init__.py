"""Files: the ``.hfs`` container and the byte buffer it is written with."""
