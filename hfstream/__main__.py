import sys

from hfstream.cli import main

sys.exit(main())
