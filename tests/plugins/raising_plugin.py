"""A user's selector that fails at selection time: a sweep must record the failed cells and go on."""

import swast


@swast.register_selector("test.raises")
class Raises:
    """Raises on every selection."""

    def select(self, ctx):
        raise RuntimeError("selector exploded on purpose")
