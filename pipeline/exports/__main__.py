import sys

from pipeline.exports.cli import main

sys.exit(main())
