"""Helper modules that the documentation's examples import (see the :depends: option)."""
