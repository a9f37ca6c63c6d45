"""``python -m pkpd``: the same as the ``pkpd`` command (see :mod:`pkpd.cli`)."""

from pkpd.cli import main

if __name__ == "__main__":  # guarded: pytest --doctest-modules imports this module
    raise SystemExit(main())
