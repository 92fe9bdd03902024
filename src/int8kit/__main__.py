import sys

from int8kit.cli import main

sys.exit(main())
