"""`python -m ntk_air` run from the folder *above* a clone named `ntk_air`.

There Python takes the clone folder for the package (a namespace package without
`__init__.py`, found before an editable install's finder) and `ntk_air.__main__` resolves to this
file. It puts the clone on the path, drops the empty namespace package, and runs the real
command line, so the clone cannot shadow the package. (From anywhere else this file is unused.)
"""

import os
import sys

if __name__ == "__main__":
    root = os.path.dirname(os.path.abspath(__file__))
    for name in [m for m in sys.modules if m == "ntk_air" or m.startswith("ntk_air.")]:
        del sys.modules[name]
    sys.path.insert(0, root)
    from ntk_air.cli import main

    sys.exit(main())
