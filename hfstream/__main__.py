import sys

from hfstream.apps.cli import main

sys.exit(main())
