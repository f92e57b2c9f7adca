"""The development token issuer (``make token``): see :mod:`dronecommon.auth.devcli`.

    uv run python scripts/dev_issuer.py token [--account contoso] [--user myowner] [--role Operator]
    uv run python scripts/dev_issuer.py init | jwks

Never for production: anyone holding the key can mint tokens.
"""

from __future__ import annotations

import sys

from dronecommon.auth.devcli import main

if __name__ == "__main__":
    sys.exit(main())
